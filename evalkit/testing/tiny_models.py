"""Tiny, random-weight checkpoints of the MLLM families other than LLaVA-1.5 (``tiny_llava``), and of the image-text
encoders (CLIP, SigLIP), for tests.

Each builder makes the family's real transformers model class from its real config classes (a few
layers, 64-128 wide, well under 5M parameters), its real processor class with a tokenizer trained
locally (``tiny_llava.train_tokenizer``) plus the family's special tokens and chat template, and
saves both with ``save_pretrained`` so the checkpoint loads through the same code path as one from
the hub (``AutoProcessor`` and the adapter's ``hf_model_class``). Nothing here touches the network.

``build(variant, folder)`` builds one of ``VARIANTS`` (a family may have several: BLIP-2 with OPT and with
Flan-T5, the three Qwen-VL generations, Idefics2 and Idefics3, LLaVA-NeXT and LLaVA-OneVision). Heads are 64 wide
and weights are saved in the hub layout, so that vLLM loads them too (tests/test_vllm_families.py).

Two choices differ from the families' own initialisation, both so that a one-layer random model's greedy
output depends on its input (a batching test needs varied outputs): weights are redrawn from N(0, 1/fan_in)
and input and output embeddings are untied.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

# Words the tiny tokenizers are trained on: the shapes suite's vocabulary and the families' prompt formats.
CORPUS: tuple[str, ...] = (
    "Question: What color is the circle? Answer: red",
    "Question: How many shapes are there? Answer: 2",
    "Is there a blue square? yes no left right",
    "answer en What shape is on the left? triangle",
    "caption en A red circle and a yellow triangle. An image of a green square.",
    "detect the green triangle ; segment the purple star",
    "Please provide the bounding box coordinate of the region this sentence describes: the green triangle.",
    "Answer the question using a single word or phrase. (a) left (b) right",
    "Provide a one-sentence caption for the provided image. A short image description:",
    "system user assistant You are a helpful assistant. Short answer:",
)
HIDDEN = 128  # text and vision width; heads are 64 wide (vLLM's CPU attention supports head_dim 64)
HEAD_DIM = 64
SEED = 0


def family_tokenizer(
    specials: Sequence[str] = (),
    *,
    bos: str | None = "<s>",
    eos: str = "</s>",
    pad: str = "<pad>",
    add_bos: bool = True,
    append_eos: bool = False,
    chat_template: str | None = None,
    vocab_size: int = 300,
    **named_specials: str,
) -> "PreTrainedTokenizerFast":
    """A byte-level BPE tokenizer trained on CORPUS with the family's special tokens added.

    ``add_bos``/``append_eos`` choose what encoding adds around a text (LLaMA-like: ``<s>`` first; T5-like:
    ``</s>`` last; Qwen-like: nothing). ``named_specials`` become attributes, e.g. ``image_token="<image>"``.
    """
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    from evalkit.testing.tiny_llava import train_tokenizer

    backend = Tokenizer.from_str(train_tokenizer(CORPUS, vocab_size=vocab_size).backend_tokenizer.to_str())
    backend.add_special_tokens([t for t in (bos, eos, pad) if t])
    single = " ".join(([bos] if add_bos and bos else []) + ["$A"] + ([eos] if append_eos else []))
    used = [t for t in (bos, eos) if t and t in single.split()]
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=f"{single} $B", special_tokens=[(t, backend.token_to_id(t)) for t in used]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=pad, unk_token="<unk>",
        model_max_length=1024, extra_special_tokens=dict(named_specials) or None,
    )
    if specials:
        tok.add_special_tokens({"additional_special_tokens": list(specials)})
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def token_id(tokenizer: Any, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == tokenizer.unk_token_id:
        raise ValueError(f"token {token!r} is not in the tokenizer")
    return int(tid)


def finish(model: Any, processor: Any, folder: str | Path,
           hub_prefixes: Sequence[tuple[str, str]] = (), hub_transposed: Sequence[str] = ()) -> Path:
    """Greedy generation defaults matching the tokenizer, then save model and processor into ``folder``.

    Where transformers 5.x ``save_pretrained`` writes another layout than the hub checkpoints, which vLLM expects
    (transformers loads both), the saved weights are rewritten: ``hub_prefixes`` rename keys (old prefix -> new
    prefix), and 3-d weights whose key ends with one of ``hub_transposed`` get their last two dimensions swapped.
    """
    tok = getattr(processor, "tokenizer", processor)
    gen = model.generation_config
    gen.do_sample = False
    gen.pad_token_id = tok.pad_token_id
    if gen.eos_token_id is None:
        gen.eos_token_id = tok.eos_token_id
    folder = save(model, processor, folder)
    if hub_prefixes or hub_transposed:
        rewrite_weights(folder, hub_prefixes, hub_transposed)
    return folder


def rewrite_weights(folder: Path, prefixes: Sequence[tuple[str, str]], transposed: Sequence[str] = ()) -> None:
    """Rewrite ``model.safetensors``: each key's first matching prefix replaced (keys already renamed kept), and
    the last two dimensions of the 3-d weights whose key ends with one of ``transposed`` swapped."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"

    def hub(key: str) -> str:
        for old, new in prefixes:
            if key.startswith(new):
                return key
            if key.startswith(old):
                return new + key[len(old):]
        return key

    def layout(key: str, value: Any) -> Any:
        if value.dim() == 3 and key.endswith(tuple(transposed)):
            return value.transpose(1, 2).contiguous()
        return value

    state = {hub(k): layout(k, v) for k, v in load_file(str(path)).items()}
    save_file(state, str(path), metadata={"format": "pt"})


def save(model: Any, processor: Any, folder: str | Path) -> Path:
    """``save_pretrained`` of model and processor into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def seeded(cls: Any, config: Any) -> Any:
    """``cls(config)`` with weights from the fixed SEED, in eval mode.

    Every matrix is redrawn from N(0, 1/fan_in): the families' own initialisers (std 0.02) make a one-layer
    random model say the same token whatever the input, and a test of batching needs varied outputs.
    """
    import torch

    torch.manual_seed(SEED)
    model = cls(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0.0, param.shape[-1] ** -0.5)
    return model


# ---- BLIP-2 and InstructBLIP ------------------------------------------------------------------------

N_QUERY = 4  # Q-Former queries = image tokens in the language model's input
BLIP_IMAGE = 32


def _blip_parts(tok: Any, t5: bool) -> dict[str, Any]:
    """Vision, Q-Former and language-model configs shared by BLIP-2 and InstructBLIP."""
    from transformers import OPTConfig, T5Config

    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1,
                  image_size=BLIP_IMAGE, patch_size=16)
    qformer = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1,
                   encoder_hidden_size=64)
    if t5:
        text = T5Config(vocab_size=len(tok), d_model=HIDDEN, d_kv=HEAD_DIM, d_ff=256, num_layers=1,
                        num_decoder_layers=1, num_heads=2, pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
                        tie_word_embeddings=False)
    else:
        text = OPTConfig(vocab_size=len(tok), hidden_size=HIDDEN, ffn_dim=256, num_hidden_layers=1,
                         num_attention_heads=2, word_embed_proj_dim=HIDDEN, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    return {"vision": vision, "qformer": qformer, "text": text.to_dict()}


def build_blip2(folder: str | Path, t5: bool = False) -> Path:
    """BLIP-2 with an OPT (decoder-only) or Flan-T5 (encoder-decoder) language model."""
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, BlipImageProcessor)

    tok = family_tokenizer(bos=None if t5 else "<s>", add_bos=not t5, append_eos=t5)
    parts = _blip_parts(tok, t5)
    config = Blip2Config(
        vision_config=Blip2VisionConfig(**parts["vision"]).to_dict(),
        qformer_config=Blip2QFormerConfig(vocab_size=len(tok), **parts["qformer"]).to_dict(),
        text_config=parts["text"], num_query_tokens=N_QUERY, image_token_index=token_id(tok, "<image>"),
    )
    image_processor = BlipImageProcessor(size={"height": BLIP_IMAGE, "width": BLIP_IMAGE})
    processor = Blip2Processor(image_processor, tok, num_query_tokens=N_QUERY)
    return finish(seeded(Blip2ForConditionalGeneration, config), processor, folder)


def build_instructblip(folder: str | Path) -> Path:
    """InstructBLIP (Vicuna-style decoder-only LM); the Q-Former reads the prompt with its own tokenizer."""
    from transformers import (BlipImageProcessor, InstructBlipConfig, InstructBlipForConditionalGeneration,
                              InstructBlipProcessor, InstructBlipQFormerConfig, InstructBlipVisionConfig,
                              LlamaConfig)

    tok = family_tokenizer()
    qformer_tok = family_tokenizer(bos="[CLS]", eos="[SEP]", pad="[PAD]", vocab_size=280)
    parts = _blip_parts(tok, t5=False)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, head_dim=HEAD_DIM,
                       max_position_embeddings=512, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    config = InstructBlipConfig(
        vision_config=InstructBlipVisionConfig(**parts["vision"]).to_dict(),
        qformer_config=InstructBlipQFormerConfig(vocab_size=len(qformer_tok), **parts["qformer"]).to_dict(),
        text_config=text.to_dict(), num_query_tokens=N_QUERY, image_token_index=token_id(tok, "<image>"),
    )
    image_processor = BlipImageProcessor(size={"height": BLIP_IMAGE, "width": BLIP_IMAGE})
    processor = InstructBlipProcessor(image_processor, tok, qformer_tok, num_query_tokens=N_QUERY)
    return finish(seeded(InstructBlipForConditionalGeneration, config), processor, folder)


# ---- Qwen2-VL, Qwen2.5-VL, Qwen3-VL ---------------------------------------------------------------------

QWEN_SPECIALS = ("<|im_start|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
                 "<|box_start|>", "<|box_end|>", "<|object_ref_start|>", "<|object_ref_end|>")
# The chat template published with Qwen2-VL-*-Instruct and Qwen2.5-VL-*-Instruct (default system turn).
QWEN2_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen3-VL-*-Instruct's template, reduced to text and images: no default system turn.
QWEN3_VL_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_QWEN_CLASSES = {  # version -> (vision config, text config, config, model, processor, video processor)
    "qwen2_vl": ("Qwen2VLVisionConfig", "Qwen2VLTextConfig", "Qwen2VLConfig", "Qwen2VLForConditionalGeneration",
                 "Qwen2VLProcessor", "Qwen2VLVideoProcessor"),
    "qwen2_5_vl": ("Qwen2_5_VLVisionConfig", "Qwen2_5_VLTextConfig", "Qwen2_5_VLConfig",
                   "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor"),
    "qwen3_vl": ("Qwen3VLVisionConfig", "Qwen3VLTextConfig", "Qwen3VLConfig", "Qwen3VLForConditionalGeneration",
                 "Qwen3VLProcessor", "Qwen3VLVideoProcessor"),
    "qwen3_vl_moe": ("Qwen3VLMoeVisionConfig", "Qwen3VLMoeTextConfig", "Qwen3VLMoeConfig",
                     "Qwen3VLMoeForConditionalGeneration", "Qwen3VLProcessor", "Qwen3VLVideoProcessor"),
}


def build_qwen_vl(folder: str | Path, version: str = "qwen2_vl") -> Path:
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL: one 2x2-merged patch grid per image (56 px -> 4 image tokens)."""
    import transformers as tf

    vcls, tcls, ccls, mcls, pcls, vpcls = (getattr(tf, n) for n in _QWEN_CLASSES[version])
    v3 = version.startswith("qwen3_vl")
    template = QWEN3_VL_TEMPLATE if v3 else QWEN2_VL_TEMPLATE
    tok = family_tokenizer(QWEN_SPECIALS, bos=None, eos="<|im_end|>", pad="<|endoftext|>", add_bos=False,
                           chat_template=template)
    patch = 16 if v3 else 14
    if version == "qwen2_vl":
        vision = vcls(depth=1, embed_dim=64, hidden_size=HIDDEN, num_heads=1, patch_size=patch)
    elif version == "qwen2_5_vl":
        vision = vcls(depth=1, hidden_size=64, intermediate_size=128, num_heads=1, out_hidden_size=HIDDEN,
                      patch_size=patch, window_size=4 * patch, fullatt_block_indexes=[0])
    else:
        vision = vcls(depth=1, hidden_size=64, intermediate_size=128, num_heads=1, out_hidden_size=HIDDEN,
                      patch_size=patch, num_position_embeddings=16, deepstack_visual_indexes=[0])
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12]}
    if v3:
        rope["mrope_interleaved"] = True
    # norm_topk_prob: not a Qwen3VLMoeTextConfig field (transformers always renormalises the top-k router weights),
    # but vLLM's Qwen3-MoE layer reads it from the config.
    # 2 x moe_intermediate_size differs from HIDDEN: the experts' hub layout (transposed) is then unambiguous.
    moe = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
               norm_topk_prob=True) if version == "qwen3_vl_moe" else {}
    text = tcls(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=2, head_dim=HEAD_DIM, max_position_embeddings=512,
                rope_parameters=rope, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **moe)
    ids = {f"{k}_token_id": token_id(tok, t) for k, t in (("image", "<|image_pad|>"), ("video", "<|video_pad|>"),
                                                          ("vision_start", "<|vision_start|>"),
                                                          ("vision_end", "<|vision_end|>"))}
    config = ccls(vision_config=vision.to_dict(), text_config=text.to_dict(), **ids)
    side = 4 * patch  # 2x2 merged patches: 4 image tokens per image
    image_processor = tf.Qwen2VLImageProcessor(min_pixels=side * side, max_pixels=side * side, patch_size=patch,
                                               merge_size=2, temporal_patch_size=2)
    processor = pcls(image_processor=image_processor, tokenizer=tok, video_processor=vpcls(), chat_template=template)
    # Qwen3-VL-MoE's hub checkpoints store the fused experts as (experts, in, out); transformers 5 saves (experts,
    # out, in) and transposes either on load, vLLM reads only the hub layout.
    transposed = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj") if version == "qwen3_vl_moe" else ()
    return finish(seeded(mcls, config), processor, folder, hub_transposed=transposed)


# ---- PaliGemma -----------------------------------------------------------------------------------------

def build_paligemma(folder: str | Path) -> Path:
    """PaliGemma: SigLIP (32 px, 16 px patches -> 4 image tokens) + Gemma; the processor adds <loc>/<seg>."""
    from transformers import (GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessor, SiglipVisionConfig)

    from tokenizers import AddedToken

    tok = family_tokenizer(bos="<bos>", eos="<eos>", add_bos=False)
    # Gemma's vocabulary has "\n" as a token of its own; vLLM's PaliGemma ends every prompt with vocab["\n"].
    tok.add_tokens([AddedToken("\n", normalized=False, special=False)])
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 4
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)  # adds <image>, <loc*>, <seg*>
    vision = SiglipVisionConfig(hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1, num_attention_heads=2,
                                image_size=32, patch_size=16, projection_dim=HIDDEN,
                                vision_use_head=False)  # as on the hub: PaliGemma reads the last hidden state
    text = GemmaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=HEAD_DIM, max_position_embeddings=512,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                       tie_word_embeddings=False)  # tied, a random model repeats its last input token
    config = PaliGemmaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), projection_dim=HIDDEN,
                             image_token_index=token_id(tok, "<image>"), tie_word_embeddings=False)
    # vLLM (and the hub) name the SigLIP tower's weights vision_tower.vision_model.*
    return finish(seeded(PaliGemmaForConditionalGeneration, config), processor, folder,
                  hub_prefixes=(("vision_tower.", "vision_tower.vision_model."),))


# ---- Idefics2, Idefics3, SmolVLM ------------------------------------------------------------------------

# The chat template of HuggingFaceM4/idefics2-8b and Idefics3-8B-Llama3 (the latter prefixed by its BOS).
IDEFICS_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].capitalize() }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IDEFICS_SPECIALS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>")


def build_idefics(folder: str | Path, version: str = "idefics3") -> Path:
    """Idefics2 (SigLIP + perceiver resampler + Mistral-like LM) or Idefics3 (pixel shuffle + Llama-like LM).

    64 px images, no image splitting: 4 image tokens per image.
    """
    import transformers as tf

    v3 = version == "idefics3"
    bos = "<|begin_of_text|>" if v3 else "<s>"
    template = ("{{ '<|begin_of_text|>' }}" + IDEFICS_TEMPLATE) if v3 else IDEFICS_TEMPLATE
    tok = family_tokenizer(IDEFICS_SPECIALS, bos=bos, eos="<end_of_utterance>", add_bos=not v3, chat_template=template)
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1, image_size=64,
                  patch_size=16)
    text = tf.LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=2, head_dim=HEAD_DIM, max_position_embeddings=512,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                          tie_word_embeddings=False).to_dict()
    if v3:
        config = tf.Idefics3Config(vision_config=tf.Idefics3VisionConfig(**vision).to_dict(), text_config=text,
                                   scale_factor=2, image_token_id=token_id(tok, "<image>"),
                                   pad_token_id=tok.pad_token_id)
        size = {"longest_edge": 64}
        image_processor = tf.Idefics3ImageProcessor(do_image_splitting=False, size=size, max_image_size=size)
        processor = tf.Idefics3Processor(image_processor, tok, image_seq_len=4, chat_template=template)
        model_cls = tf.Idefics3ForConditionalGeneration
    else:
        text["model_type"] = "mistral"
        perceiver = tf.Idefics2PerceiverConfig(hidden_size=HIDDEN, resampler_n_latents=4, resampler_depth=1,
                                               resampler_n_heads=2, resampler_head_dim=HEAD_DIM, num_key_value_heads=2)
        config = tf.Idefics2Config(vision_config=tf.Idefics2VisionConfig(**vision).to_dict(), text_config=text,
                                   perceiver_config=perceiver.to_dict(), image_token_id=token_id(tok, "<image>"))
        image_processor = tf.Idefics2ImageProcessor(do_image_splitting=False, size={"shortest_edge": 64,
                                                                                     "longest_edge": 64})
        processor = tf.Idefics2Processor(image_processor, tok, image_seq_len=4, chat_template=template)
        model_cls = tf.Idefics2ForConditionalGeneration
    return finish(seeded(model_cls, config), processor, folder)


# ---- Kosmos-2 -----------------------------------------------------------------------------------------

def build_kosmos2(folder: str | Path) -> Path:
    """Kosmos-2: CLIP-like vision (32 px) + 64 latent image queries; the processor adds the grounding tokens."""
    from transformers import (CLIPImageProcessor, Kosmos2Config, Kosmos2ForConditionalGeneration, Kosmos2Processor,
                              Kosmos2TextConfig, Kosmos2VisionConfig)

    # The processor writes the 64 image slots as the ids right after <unk>; the pad id must not be among them
    # (pad ids get no position), so this tokenizer pads with a token of its own at the end of the vocabulary.
    tok = family_tokenizer(pad="<kosmos_pad>")
    processor = Kosmos2Processor(CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                                 tok)  # adds <grounding>, <phrase>, <object>, <patch_index_*> ...
    vision = Kosmos2VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1,
                                 image_size=32, patch_size=16)
    text = Kosmos2TextConfig(vocab_size=len(tok), embed_dim=HIDDEN, layers=1, ffn_dim=256, attention_heads=2,
                             max_position_embeddings=512, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                             eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    config = Kosmos2Config(text_config=text.to_dict(), vision_config=vision.to_dict(), latent_query_num=64,
                           tie_word_embeddings=False)
    return finish(seeded(Kosmos2ForConditionalGeneration, config), processor, folder)


# ---- InternVL (HF format) ---------------------------------------------------------------------------------

# InternVL3-*-hf's template, reduced to text and images: ChatML, an image renders as "<IMG_CONTEXT>\n".
INTERNVL_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\\n' }}{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_internvl(folder: str | Path) -> Path:
    """InternVL 2.5/3 in the HF format: InternViT (32 px, 8 px patches, pixel shuffle 0.5 -> 4 tokens) + Qwen2."""
    import transformers as tf

    tok = family_tokenizer(("<|im_start|>",), bos=None, eos="<|im_end|>", pad="<|endoftext|>", add_bos=False,
                           chat_template=INTERNVL_TEMPLATE, start_image_token="<img>", end_image_token="</img>",
                           context_image_token="<IMG_CONTEXT>", video_token="<video>")
    vision = tf.InternVLVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1,
                                     image_size=[32, 32], patch_size=[8, 8])
    text = tf.Qwen2Config(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    config = tf.InternVLConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), image_seq_length=4,
                               image_token_id=token_id(tok, "<IMG_CONTEXT>"), tie_word_embeddings=False)
    image_processor = tf.GotOcr2ImageProcessor(crop_to_patches=False, max_patches=1, size={"height": 32, "width": 32})
    processor = tf.InternVLProcessor(image_processor=image_processor, tokenizer=tok,
                                     video_processor=tf.InternVLVideoProcessor(), image_seq_length=4,
                                     chat_template=INTERNVL_TEMPLATE)
    return finish(seeded(tf.InternVLForConditionalGeneration, config), processor, folder)


# ---- LLaVA-NeXT and LLaVA-OneVision (any-resolution tiling) ---------------------------------------------------

# The chat templates published with the llava-hf checkpoints (chat_template.json), verbatim.
# llava-hf/llava-1.5-7b-hf: "USER: <image>\n{text} ASSISTANT:"; a system turn's text comes first, unprefixed.
LLAVA_15_HF_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
# llava-hf/llava-v1.6-mistral-7b-hf: "[INST] <image>\n{text} [/INST]"
LLAVA_NEXT_MISTRAL_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}{% elif message['role'] == 'user' %}"
    "{{ '[INST] ' }}{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{{' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'][0]['text'] + '</s> '}}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
# llava-hf/llava-onevision-qwen2-*-ov-hf: "<|im_start|>user <image>\n{text}<|im_end|><|im_start|>assistant\n" (a
# space after the role, no newline after <|im_end|>, no default system turn).
LLAVA_ONEVISION_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ '\n' + content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Tiles of 32 px: a 32x32 base image plus up to 2x2 tiles, each 2x2 patches of 16 px (4 tokens per tile).
LLAVA_TILE = 32
LLAVA_PINPOINTS = [[32, 32], [32, 64], [64, 32], [64, 64]]


def build_llava_next(folder: str | Path, onevision: bool = False) -> Path:
    """LLaVA-NeXT (CLIP + a Llama-architecture LM with llava-v1.6-mistral's chat template) or LLaVA-OneVision
    (SigLIP + Qwen2, the llava-onevision-qwen2 chat template).

    Both tile the image (anyres) and append an ``image_newline`` embedding per row of tile features.
    """
    import transformers as tf

    vision = dict(hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1, num_attention_heads=2,
                  image_size=LLAVA_TILE, patch_size=16)
    if onevision:
        tok = family_tokenizer(("<|im_start|>", "<image>", "<video>"), bos=None, eos="<|im_end|>", pad="<|endoftext|>",
                               add_bos=False, chat_template=LLAVA_ONEVISION_TEMPLATE,
                               image_token="<image>", video_token="<video>")
        text = tf.Qwen2Config(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
        vision_config = tf.SiglipVisionConfig(vision_use_head=False, **vision)
        config = tf.LlavaOnevisionConfig(vision_config=vision_config.to_dict(), text_config=text.to_dict(),
                                         image_token_index=token_id(tok, "<image>"),
                                         video_token_index=token_id(tok, "<video>"),
                                         image_grid_pinpoints=LLAVA_PINPOINTS, vision_feature_layer=-1,
                                         vision_aspect_ratio="anyres_max_9", tie_word_embeddings=False)
        image_processor = tf.LlavaOnevisionImageProcessor(size={"height": LLAVA_TILE, "width": LLAVA_TILE},
                                                          crop_size={"height": LLAVA_TILE, "width": LLAVA_TILE},
                                                          image_grid_pinpoints=LLAVA_PINPOINTS)
        processor = tf.LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok,
                                               video_processor=tf.LlavaOnevisionVideoProcessor(),
                                               num_image_tokens=(LLAVA_TILE // 16) ** 2,
                                               vision_feature_select_strategy="full",
                                               vision_aspect_ratio="anyres_max_9", chat_template=tok.chat_template)
        model_cls = tf.LlavaOnevisionForConditionalGeneration
    else:
        tok = family_tokenizer(("<image>",), chat_template=LLAVA_NEXT_MISTRAL_TEMPLATE, image_token="<image>")
        text = tf.LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=256, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=2, head_dim=HEAD_DIM,
                              max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
        vision_config = tf.CLIPVisionConfig(projection_dim=HIDDEN, **vision)
        config = tf.LlavaNextConfig(vision_config=vision_config.to_dict(), text_config=text.to_dict(),
                                    image_token_index=token_id(tok, "<image>"), image_grid_pinpoints=LLAVA_PINPOINTS,
                                    vision_feature_select_strategy="default", vision_feature_layer=-1,
                                    tie_word_embeddings=False)
        image_processor = tf.LlavaNextImageProcessor(size={"shortest_edge": LLAVA_TILE},
                                                     crop_size={"height": LLAVA_TILE, "width": LLAVA_TILE},
                                                     image_grid_pinpoints=LLAVA_PINPOINTS)
        processor = tf.LlavaNextProcessor(image_processor=image_processor, tokenizer=tok, patch_size=16,
                                          vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                          chat_template=LLAVA_NEXT_MISTRAL_TEMPLATE)
        model_cls = tf.LlavaNextForConditionalGeneration
    return finish(seeded(model_cls, config), processor, folder,
                  hub_prefixes=(("vision_tower.", "vision_tower.vision_model."),))


# ---- Florence-2 (HF-native) --------------------------------------------------------------------------------

FLORENCE_TASK_TOKENS = ("<OCR>", "<CAPTION>", "<DETAILED_CAPTION>", "<OD>", "<CAPTION_TO_PHRASE_GROUNDING>",
                        "<OPEN_VOCABULARY_DETECTION>")


def build_florence2(folder: str | Path) -> Path:
    """Florence-2: a two-stage DaViT (32 px -> 4x4 tokens + 1 temporal token) + a BART encoder-decoder.

    As on the hub, ``<loc_0>`` ... ``<loc_999>`` are special tokens (so outputs are decoded keeping them).
    """
    import transformers as tf

    locs = tuple(f"<loc_{i}>" for i in range(1000))
    tok = family_tokenizer(FLORENCE_TASK_TOKENS + locs, bos="<s>", eos="</s>", add_bos=True, append_eos=True,
                           image_token="<image>")
    vision = tf.Florence2VisionConfig(depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2], patch_padding=[3, 1],
                                      patch_prenorm=[False, True], embed_dim=[32, 64], num_heads=[1, 1],
                                      num_groups=[1, 1], window_size=2, projection_dim=HIDDEN,
                                      max_position_embeddings=8, max_temporal_embeddings=4)
    text = tf.BartConfig(vocab_size=len(tok), d_model=HIDDEN, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=256,
                         decoder_ffn_dim=256, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=None, tie_word_embeddings=False)
    config = tf.Florence2Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                                image_token_id=token_id(tok, "<image>"), tie_word_embeddings=False)
    image_processor = tf.CLIPImageProcessor(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32},
                                            do_center_crop=False)
    image_processor.image_seq_length = 4 * 4 + 1
    processor = tf.Florence2Processor(image_processor=image_processor, tokenizer=tok)
    return finish(seeded(tf.Florence2ForConditionalGeneration, config), processor, folder)


# ---- image-text encoders: CLIP and SigLIP ---------------------------------------------------------------

ENCODER_TOWER = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1)


def build_clip(folder: str | Path) -> Path:
    """CLIP: a causal text tower pooled at ``<|endoftext|>`` (appended by the tokenizer) + a ViT (32 px)."""
    import transformers as tf

    tok = family_tokenizer(bos="<|startoftext|>", eos="<|endoftext|>", append_eos=True)
    tok.model_max_length = 64
    text = tf.CLIPTextConfig(vocab_size=len(tok), max_position_embeddings=64, bos_token_id=tok.bos_token_id,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **ENCODER_TOWER)
    vision = tf.CLIPVisionConfig(image_size=32, patch_size=16, **ENCODER_TOWER)
    config = tf.CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=32)
    image_processor = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = tf.CLIPProcessor(image_processor=image_processor, tokenizer=tok)
    return save(seeded(tf.CLIPModel, config), processor, folder)


def build_siglip(folder: str | Path) -> Path:
    """SigLIP: a bidirectional text tower pooled at the last position (texts padded to 64) + a ViT (32 px) with an
    attention-pooling head; logit scale and bias at the paper's initial values (log 10, -10)."""
    import torch
    import transformers as tf

    tok = family_tokenizer(bos=None, eos="</s>", add_bos=False, append_eos=True)
    tok.model_max_length = 64
    text = tf.SiglipTextConfig(vocab_size=len(tok), max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                               bos_token_id=None, eos_token_id=tok.eos_token_id, **ENCODER_TOWER)
    vision = tf.SiglipVisionConfig(image_size=32, patch_size=16, **ENCODER_TOWER)
    model = seeded(tf.SiglipModel, tf.SiglipConfig(text_config=text.to_dict(), vision_config=vision.to_dict()))
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)
    processor = tf.SiglipProcessor(image_processor=tf.SiglipImageProcessor(size={"height": 32, "width": 32}),
                                   tokenizer=tok)
    return save(model, processor, folder)


# ---- registry ----------------------------------------------------------------------------------------

VARIANTS: dict[str, Callable[[Path], Path]] = {
    "blip2_opt": build_blip2,
    "blip2_t5": lambda folder: build_blip2(folder, t5=True),
    "instructblip": build_instructblip,
    "qwen2_vl": lambda folder: build_qwen_vl(folder, "qwen2_vl"),
    "qwen2_5_vl": lambda folder: build_qwen_vl(folder, "qwen2_5_vl"),
    "qwen3_vl": lambda folder: build_qwen_vl(folder, "qwen3_vl"),
    "qwen3_vl_moe": lambda folder: build_qwen_vl(folder, "qwen3_vl_moe"),
    "paligemma": build_paligemma,
    "idefics2": lambda folder: build_idefics(folder, "idefics2"),
    "idefics3": build_idefics,
    "kosmos2": build_kosmos2,
    "internvl": build_internvl,
    "florence2": build_florence2,
    "llava_next": build_llava_next,
    "llava_onevision": lambda folder: build_llava_next(folder, onevision=True),
    "clip": build_clip,
    "siglip": build_siglip,
}


def build(variant: str, folder: str | Path) -> Path:
    """Build the tiny checkpoint ``variant`` (a key of VARIANTS) into ``folder``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown tiny model {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[variant](Path(folder))
