"""Tiny, real-architecture LLaVA models: a locally trained tokenizer, a LlavaForConditionalGeneration built
from real configs (CLIP vision tower + Llama text tower), and a saver that writes the Hugging Face hub layout.

Used for the bundled reference model (``evalkit/reference_model``) and for end-to-end tests. Nothing here
touches the network. Heavy imports (torch, transformers, tokenizers) happen inside the functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<s>", "</s>", "<unk>", "<pad>", "<image>")
IMAGE_TOKEN = "<image>"

# LLaVA-1.5 conversation format. A user turn renders as "USER: <image>\n{text} ", an assistant turn as
# "ASSISTANT: {text}</s>", and the generation prompt as "ASSISTANT:". So one image question renders as
# exactly "USER: <image>\n{Q} ASSISTANT:" (the tokenizer prepends <s>). Content may be a string or a list
# of {"type": "image"} / {"type": "text", "text": ...} parts; images render before text, as in llava-hf.
LLAVA_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}"
    "{%- set text = message['content'] -%}{%- set n_images = 0 -%}"
    "{%- else -%}"
    "{%- set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text')"
    " | join(' ') -%}"
    "{%- set n_images = message['content'] | selectattr('type', 'equalto', 'image') | list | length -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'system' -%}{{ text + ' ' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ 'USER: ' }}{%- for _ in range(n_images) -%}{{ '<image>\n' }}{%- endfor -%}{{ text + ' ' }}"
    "{%- else -%}{{ 'ASSISTANT: ' + text + '</s>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)

# A small fixed corpus for test tokenizers (make_tiny_llava); the reference model trains its own.
_TEST_CORPUS = (
    "USER: <image>\nWhat color is the circle? ASSISTANT: red</s>",
    "USER: <image>\nHow many shapes are there? ASSISTANT: 2</s>",
    "USER: <image>\nIs there a blue square? ASSISTANT: yes</s>",
    "Please provide the bounding box coordinate of the region this sentence describes: the green triangle.",
    "[0.12, 0.34, 0.56, 0.78] [0.05, 0.90, 0.25, 0.61]",
    "Provide a one-sentence caption for the provided image. A red circle and a yellow triangle.",
    "Answer the question using a single word or phrase. (a) left (b) right",
)

# Hub key layout (as llava-hf checkpoints are published): transformers' in-memory names on the left.
_HUB_PREFIXES = (
    ("model.vision_tower.vision_model.", "vision_tower.vision_model."),
    ("model.vision_tower.", "vision_tower.vision_model."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 300, *, whole_words: bool = False, phrases: Iterable[str] = ()
) -> "PreTrainedTokenizerFast":
    """Train a byte-level BPE tokenizer on ``texts``; it prepends ``<s>`` and carries the LLaVA chat template.

    ``whole_words``: pre-tokenize on spaces only (not GPT-2's letters/digits/punctuation split), so a piece
    such as ``0.27,`` or ``circle.`` can become one token. ``phrases``: fixed strings (instructions, chat
    template parts) added as single, non-special tokens, matched before BPE as ``<image>`` is.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    phrases = list(phrases)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    if whole_words:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r" ?[^\s]+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = list(texts)
    for phrase in phrases:  # BPE merges are spent on what the phrases do not cover
        texts = [t.replace(phrase, " ") for t in texts]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in phrases])
    bos_id = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=512,
    )
    fast.chat_template = LLAVA_CHAT_TEMPLATE
    return fast


def build_tiny_llava(
    tokenizer: "PreTrainedTokenizerFast",
    image_size: int = 64,
    patch_size: int = 16,
    hidden: int = 128,
    layers: tuple[int, int] = (3, 3),
    seed: int = 0,
    head_dim: int = 64,
    mlp_ratio: int = 4,
    max_positions: int = 512,
) -> tuple["LlavaForConditionalGeneration", "LlavaProcessor"]:
    """Build a randomly initialised LLaVA (CLIP vision tower, Llama text tower, both ``hidden`` wide).

    ``layers`` is (vision layers, text layers). Attention heads are ``hidden // head_dim`` wide ``head_dim``
    (64: vLLM's CPU attention supports it). Returns the model and a LlavaProcessor that expands ``<image>``
    into (image_size // patch_size) ** 2 image tokens (the CLS feature is dropped: strategy "default").
    """
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    if hidden % head_dim or image_size % patch_size:
        raise ValueError("hidden must be a multiple of head_dim and image_size a multiple of patch_size")
    heads = hidden // head_dim
    vision = CLIPVisionConfig(
        hidden_size=hidden,
        intermediate_size=hidden * mlp_ratio,
        num_hidden_layers=layers[0],
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * mlp_ratio,
        num_hidden_layers=layers[1],
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=head_dim,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    n_image_tokens = (image_size // patch_size) ** 2
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=n_image_tokens,
        tie_word_embeddings=False,
    )
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.eval()

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
        do_resize=True,
        do_convert_rgb=True,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
    )
    return model, processor


def to_hub_key(name: str) -> str:
    """Map one transformers (5.x, in-memory) parameter name to the llava-hf hub layout."""
    for old, new in _HUB_PREFIXES:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def save_checkpoint(model: "LlavaForConditionalGeneration", processor: "LlavaProcessor", folder: str | Path) -> Path:
    """Save model and processor into ``folder``, with weight names in the hub layout that vLLM expects."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    for stale in folder.glob("model*.safetensors*"):
        stale.unlink()
    state = {to_hub_key(k): v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "model.safetensors").chmod(0o644)
    _write_generation_defaults(folder)
    return folder


def _write_generation_defaults(folder: Path) -> None:
    """Keep generation_config.json minimal and deterministic (greedy by default)."""
    path = folder / "generation_config.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data["do_sample"] = False
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_checkpoint(folder: str | Path) -> tuple["LlavaForConditionalGeneration", "LlavaProcessor"]:
    """Load a checkpoint saved by save_checkpoint; raises ValueError if any weight is missing or unexpected."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model, info = LlavaForConditionalGeneration.from_pretrained(str(folder), output_loading_info=True)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise ValueError(f"checkpoint {folder} did not load cleanly: {bad}")
    model.eval()
    return model, AutoProcessor.from_pretrained(str(folder))


def make_tiny_llava(
    folder: str | Path, seed: int = 0, layers: tuple[int, int] = (1, 1)
) -> tuple["LlavaForConditionalGeneration", "LlavaProcessor"]:
    """Build a random-weight tiny LLaVA with a tokenizer trained on a fixed corpus, save it to ``folder``."""
    tokenizer = train_tokenizer(_TEST_CORPUS, vocab_size=300)
    model, processor = build_tiny_llava(tokenizer, layers=layers, seed=seed)
    save_checkpoint(model, processor, folder)
    return model, processor
