"""What every model family shares. A family module only declares what differs.

An adapter turns a model-neutral ``Sample`` into the family's exact prompt (text + images),
declares the family's box format and engine quirks, and cleans the raw output. It does not
know which engine runs the prompt: the same ``Prompt`` goes to the hf and the vLLM backend.

Generative families come in two prompt styles:

- ``Adapter``: the processor's chat template (LLaVA, Qwen-VL, Idefics, InternVL, ...). Per task kind,
  ``instructions`` may replace the text of the user turn.
- ``FixedPromptAdapter``: families trained on a fixed text format and no chat template (BLIP-2's
  "Question: {q} Answer:", PaliGemma's "answer en {q}", Kosmos-2, Florence-2). ``instructions`` holds
  the whole prompt per task kind.

Prompt texts are ``str.format`` templates over ``PromptFields``: ``{prompt}`` (the task's full user text,
instruction included), ``{question}`` (the bare question where the task recorded one) and
``{expression}`` (a grounding sample's referring expression).

``EncoderAdapter`` is the other kind of model: a contrastive image-text encoder (CLIP, SigLIP) that generates
nothing. It runs only encoder tasks (Task.kind "encoder"), whose samples carry ``texts`` to match against
their images; the backend's ``similarity`` returns the logit matrix of each sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.core.errors import UsageError
from evalkit.core.types import GenerationSettings, Prompt, Sample

from .protocols import DEFAULT_PROTOCOL, Entry, check_protocol, entries_hash, resolve

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

# Metadata keys where tasks record the bare question (without the task's instruction suffix).
# Both spellings are in use (tasks/vqa.py: raw_question, evalkit/synthetic/shapes.py: question_raw).
RAW_QUESTION_KEYS: tuple[str, ...] = ("raw_question", "question_raw")
# Metadata key of a grounding sample's referring expression.
EXPRESSION_KEY = "expression"
# Key of ``Adapter.instructions`` used for any task kind without an entry of its own.
DEFAULT_KIND = "default"


def infer_kind(sample: Sample) -> str | None:
    """The task kind a sample's metadata reveals, for callers that do not pass ``kind``.

    A referring expression means grounding, options mean a multiple-choice question, a recorded bare
    question means VQA. Captioning leaves no trace in the metadata: None.
    """
    meta = sample.metadata
    if meta.get(EXPRESSION_KEY):
        return "grounding"
    if meta.get("options"):
        return "choice"
    if any(isinstance(meta.get(key), str) for key in RAW_QUESTION_KEYS):
        return "vqa"
    return None


@dataclass(frozen=True)
class PromptFields:
    """The parts of a sample that a family's prompt format may use (see the module docstring)."""

    kind: str | None
    prompt: str  # Sample.question: the task's full user text, instruction included
    question: str  # the bare question where the task recorded one, else ``prompt``
    expression: str  # the referring expression of a grounding sample, else ``prompt``
    options: tuple[str, ...] = ()  # a multiple-choice sample's option texts (metadata "options")

    @classmethod
    def of(cls, sample: Sample, kind: str | None = None) -> "PromptFields":
        meta = sample.metadata
        question = next((meta[k] for k in RAW_QUESTION_KEYS if isinstance(meta.get(k), str)), None)
        options = meta.get("options")
        options = tuple(str(o) for o in options) if isinstance(options, list) else ()
        if question is None and options:
            # A choice task that recorded no bare question writes it first, the options on the lines below.
            question = sample.question.split("\n", 1)[0]
        expression = meta.get(EXPRESSION_KEY)
        return cls(
            kind=kind if kind is not None else infer_kind(sample),
            prompt=sample.question,
            question=str(sample.question if question is None else question),
            expression=expression if isinstance(expression, str) and expression else sample.question,
            options=options,
        )

    def render(self, template: str, layout: str = "letters") -> str:
        from .protocols import OPTION_LAYOUTS

        try:
            return template.format(prompt=self.prompt, question=self.question, expression=self.expression,
                                   options=OPTION_LAYOUTS[layout](list(self.options)))
        except (KeyError, IndexError) as exc:  # a bad template is the adapter author's error, not the user's
            raise ValueError(f"prompt template {template!r} uses an unknown field: {exc}") from exc


@dataclass(frozen=True)
class Checkpoint:
    """A well-known checkpoint: its hub id and the ``model_type`` of its config.json (which decides box format
    and protocol entries, exactly as for a local copy of the same folder)."""

    hub_id: str
    model_type: str


@dataclass(frozen=True)
class Adapter:
    family: str
    default_checkpoint: str
    # config.json `model_type` values that select this family when a local folder is given.
    model_types: tuple[str, ...] = ()
    # Names a user may give for well-known checkpoints of the family -> hub id and model_type.
    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    # How boxes are written in this family's prompts and outputs (see evalkit.core.boxes).
    box_format: str = "norm_xyxy"
    # Checkpoints of one family can differ (e.g. LLaVA-1.5 pads to a square, NeXT does not).
    box_format_by_model_type: dict[str, str] = field(default_factory=dict)
    # transformers class used to load the model (attribute of the transformers package).
    hf_model_class: str = "AutoModelForImageTextToText"
    # Backends known to run this family.
    backends: tuple[str, ...] = ("hf",)
    # Prompt text per task kind ("vqa", "caption", "grounding", "choice", ... or DEFAULT_KIND), a template
    # over PromptFields. Chat families: the user turn's text. Fixed-format families: the whole prompt.
    # A kind without an entry uses the task's own text (Sample.question).
    instructions: dict[str, str] = field(default_factory=dict)
    # Extra vllm.LLM(...) arguments for this family.
    vllm_engine_args: dict[str, Any] = field(default_factory=dict)
    # config.json model_types of this family that vLLM does not run (measured reason), refused before engine start.
    vllm_unsupported: dict[str, str] = field(default_factory=dict)
    # Decode generated ids with skip_special_tokens (False where boxes are special tokens, e.g. Florence-2).
    skip_special_tokens: bool = True
    # Regular expressions removed from the raw output by ``parse`` (end markers, echoed prompt prefixes).
    clean_patterns: tuple[str, ...] = ()
    # The processor wants images nested per prompt (``[[img], [img, img]]``) rather than one flat list.
    images_per_prompt: bool = False
    # Largest batch the hf backend may give ``generate`` (None: any). Kosmos-2's generation positions count
    # left padding, so its batched greedy output differs from batch 1: it runs one prompt at a time.
    hf_max_batch_size: int | None = None
    # The checkpoints ship their modelling code (trust_remote_code); loading needs the user's opt-in.
    remote_code: bool = False
    # An image-text encoder (EncoderAdapter): scores encoder tasks by similarity and generates nothing.
    encoder: bool = False
    # Why no backend runs this family (then ``backends`` is empty); "" for runnable families.
    not_runnable: str = ""
    # The tiny test checkpoints of each model_type: keys of evalkit.testing.tiny_models.VARIANTS ("tiny_llava":
    # evalkit.testing.tiny_llava), all run by tests/test_adapters_tiny.py; ``tiny_missing``: why a model_type has none.
    tiny_variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tiny_missing: dict[str, str] = field(default_factory=dict)
    # Protocol entries beyond the default one: protocol -> task kind (or "kind@model_type") -> Entry.
    protocols: dict[str, dict[str, Entry]] = field(default_factory=dict)
    # Set by ``bind`` for a run: the protocol and the checkpoint's config.json model_type.
    protocol: str = DEFAULT_PROTOCOL
    model_type: str | None = None

    # -- checkpoints and protocols -------------------------------------------------------------------
    def model_type_of(self, hub_id: str) -> str | None:
        """config.json model_type of a well-known checkpoint (by hub id), None when unknown."""
        return next((c.model_type for c in self.checkpoints.values() if c.hub_id == hub_id), None)

    def bind(self, protocol: str = DEFAULT_PROTOCOL, model_type: str | None = None) -> "Adapter":
        """This adapter for one run: prompts of ``protocol`` for a checkpoint of ``model_type``."""
        from dataclasses import replace

        return replace(self, protocol=check_protocol(protocol), model_type=model_type)

    def entry(self, kind: str | None) -> Entry:
        """The bound protocol's entry for a task kind (the generic one where the protocol has none)."""
        return resolve(self.protocols, self.protocol, kind, self.model_type)

    def generation_for(self, kind: str | None, settings: GenerationSettings) -> GenerationSettings:
        """The task's generation settings with the protocol's limits."""
        from dataclasses import replace

        limit = self.entry(kind).max_new_tokens
        return settings if limit is None else replace(settings, max_new_tokens=limit)

    def protocol_hash(self, kinds: list[str]) -> str:
        """Hash of what the bound protocol sends for these task kinds (the evalkit texts included)."""
        described = [{"kind": k, **self.entry(k).describe(),
                      "evalkit": self.instructions.get(k, self.instructions.get(DEFAULT_KIND))} for k in sorted(kinds)]
        return entries_hash([{"protocol": self.protocol, "model_type": self.model_type}, *described])

    def check_backend(self, backend: str) -> None:
        """Raise UsageError when this family does not run on ``backend``."""
        if backend in self.backends:
            return
        if not self.backends:
            raise UsageError(f"the {self.family} family cannot be run: {self.not_runnable}")
        raise UsageError(f"the {self.family} family does not run on --backend {backend}; "
                         f"use --backend {self.backends[0]}")

    # -- prompts ---------------------------------------------------------------------------------
    def prompt_text(self, sample: Sample, kind: str | None = None) -> str:
        """The family's text for this sample's (last) user turn: the protocol's entry, else an ``instructions``
        entry, else the task's text."""
        fields = PromptFields.of(sample, kind)
        entry = self.entry(fields.kind)
        if entry.text is not None:
            return fields.render(entry.text, entry.options)
        template = self.instructions.get(fields.kind or DEFAULT_KIND, self.instructions.get(DEFAULT_KIND))
        return sample.question if template is None else fields.render(template)

    def messages(self, sample: Sample, n_images: int, kind: str | None = None) -> list[dict[str, Any]]:
        """The chat messages: the protocol's system turn, earlier turns, images first in the first user turn."""
        system = self.entry(kind if kind is not None else infer_kind(sample)).system
        messages: list[dict[str, Any]] = []
        if system is not None:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        for i, turn in enumerate(sample.history):
            content: list[dict[str, Any]] = [{"type": "text", "text": turn.content}]
            if i == 0 and turn.role == "user":
                content = [{"type": "image"} for _ in range(n_images)] + content
            messages.append({"role": turn.role, "content": content})
        content = [{"type": "text", "text": self.prompt_text(sample, kind)}]
        if not sample.history:
            content = [{"type": "image"} for _ in range(n_images)] + content
        messages.append({"role": "user", "content": content})
        return messages

    def build_prompt(self, sample: Sample, images: list["Image"], processor: Any, kind: str | None = None) -> Prompt:
        """Default: the processor's chat template with the images before the text.

        ``kind`` is the task's kind (Task.kind); when None it is inferred from the sample's metadata.
        """
        messages = self.messages(sample, len(images), kind)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return Prompt(text=text, images=list(images))

    def box_format_for(self, model_type: str | None) -> str:
        return self.box_format_by_model_type.get(model_type or "", self.box_format)

    # -- engine hooks (used by the hf backend) ---------------------------------------------------
    def processor_inputs(self, prompts: list[Prompt]) -> dict[str, Any]:
        """Keyword arguments for ``processor(...)`` for one batch: the texts and the images."""
        texts = [p.text for p in prompts]
        if self.images_per_prompt:
            nested = [list(p.images) for p in prompts]
            return {"text": texts, "images": nested if any(nested) else None}
        flat = [img for p in prompts for img in p.images]
        return {"text": texts, "images": flat or None}

    def model_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The processor's outputs the model receives (all of them, unless a family drops one)."""
        return inputs

    @staticmethod
    def is_encoder_decoder(model: Any) -> bool:
        """True for encoder-decoder language models (BLIP-2 Flan-T5, Florence-2's BART)."""
        config = getattr(model, "config", None)
        return bool(getattr(config, "is_encoder_decoder", False)) or (
            getattr(config, "use_decoder_only_language_model", True) is False
        )

    def padding_side(self, model: Any) -> str:
        """Where batched prompts are padded so that padding does not change any prompt's output.

        Decoder-only: left (generation continues every row at the end). Encoder-decoder: right, because
        T5's relative and BART's learned positions count pad slots placed before the text.
        """
        return "right" if self.is_encoder_decoder(model) else "left"

    def output_offset(self, model: Any, prompt_len: int) -> int:
        """How many leading ids of a ``generate`` output row are not generated text.

        Decoder-only models echo the (padded) prompt; encoder-decoder models return only the decoder's
        sequence, which starts with its one decoder-start token.
        """
        return 1 if self.is_encoder_decoder(model) else prompt_len

    def check_load_options(self, trust_remote_code: bool) -> None:
        """Raise UsageError when the family cannot load with these options."""
        if self.remote_code and not trust_remote_code:
            raise UsageError(
                f"the {self.family} family runs its checkpoints' own code; rerun with --trust-remote-code "
                "if you trust that checkpoint"
            )

    # -- outputs ---------------------------------------------------------------------------------
    def parse(self, text: str, kind: str | None = None) -> str:
        """Clean the raw output: the family's end markers, the protocol's clean-up, surrounding white space."""
        for pattern in self.clean_patterns + self.entry(kind).clean:
            text = re.sub(pattern, "", text)
        return text.strip()


@dataclass(frozen=True)
class FixedPromptAdapter(Adapter):
    """A family prompted with a fixed text format instead of a chat template (single turn only).

    The prompt is ``image_placeholder`` once per image followed by the ``instructions`` entry for the task
    kind; the family's processor inserts the image tokens themselves.
    """

    image_placeholder: str = ""

    def build_prompt(self, sample: Sample, images: list["Image"], processor: Any, kind: str | None = None) -> Prompt:
        if sample.history:
            raise ValueError(f"the {self.family} family has no chat format; multi-turn samples are not supported")
        text = self.image_placeholder * len(images) + self.prompt_text(sample, kind)
        return Prompt(text=text, images=list(images))


@dataclass(frozen=True)
class EncoderAdapter(Adapter):
    """A contrastive image-text encoder (CLIP, SigLIP): no prompt format, no generation.

    The prompt is the sample's ``texts`` and images as they are (the task writes the texts, e.g. MMVP-VLM's
    "a photo of ..."); the hf backend runs the model's forward pass over a batch's texts and images and keeps
    each prompt's block of ``logits_per_text``.
    """

    encoder: bool = True
    backends: tuple[str, ...] = ("hf",)
    # How texts are padded: True (to the longest in the batch; CLIP pools at the end-of-text token behind a
    # causal mask, so padding changes nothing) or "max_length" (SigLIP pools the last position, pad included,
    # and was trained on texts padded to the full length).
    text_padding: bool | str = True
    # Pass the tokenizer's attention mask to the model. SigLIP was trained without one (pads are attended to).
    text_attention_mask: bool = True

    def build_prompt(self, sample: Sample, images: list["Image"], processor: Any, kind: str | None = None) -> Prompt:
        if not sample.texts:
            raise ValueError(f"the {self.family} family is an image-text encoder; this sample has no texts to score")
        return Prompt(text="\n".join(sample.texts), images=list(images), texts=list(sample.texts))

    def processor_inputs(self, prompts: list[Prompt]) -> dict[str, Any]:
        return {"text": [t for p in prompts for t in p.texts], "images": [img for p in prompts for img in p.images],
                "padding": self.text_padding, "truncation": True}

    def model_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in inputs.items() if self.text_attention_mask or k != "attention_mask"}

    def padding_side(self, model: Any) -> str:
        return "right"  # position embeddings are absolute: left padding would move every text
