"""What every model family shares. A family module only declares what differs.

An adapter turns a model-neutral ``Sample`` into the family's exact prompt (text + images),
declares the family's box format and engine quirks, and cleans the raw output. It does not
know which engine runs the prompt: the same ``Prompt`` goes to the hf and the vLLM backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.types import Prompt, Sample

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image


@dataclass(frozen=True)
class Adapter:
    family: str
    default_checkpoint: str
    # config.json `model_type` values that select this family when a local folder is given.
    model_types: tuple[str, ...] = ()
    # Names a user may give for well-known checkpoints of the family -> hub id.
    checkpoints: dict[str, str] = field(default_factory=dict)
    # How boxes are written in this family's prompts and outputs (see evalkit.grounding).
    box_format: str = "norm_xyxy"
    # Checkpoints of one family can differ (e.g. LLaVA-1.5 pads to a square, NeXT does not).
    box_format_by_model_type: dict[str, str] = field(default_factory=dict)
    # transformers class used to load the model (attribute of the transformers package).
    hf_model_class: str = "AutoModelForImageTextToText"
    # Backends known to run this family.
    backends: tuple[str, ...] = ("hf",)
    # Per-task instruction overrides: task family name -> format string with {question}.
    instructions: dict[str, str] = field(default_factory=dict)
    # Extra vllm.LLM(...) arguments for this family.
    vllm_engine_args: dict[str, Any] = field(default_factory=dict)

    def build_prompt(self, sample: Sample, images: list["Image"], processor: Any) -> Prompt:
        """Default: the processor's chat template with the images before the text."""
        messages: list[dict[str, Any]] = []
        for i, turn in enumerate(sample.history):
            content: list[dict[str, Any]] = [{"type": "text", "text": turn.content}]
            if i == 0 and turn.role == "user":
                content = [{"type": "image"} for _ in images] + content
            messages.append({"role": turn.role, "content": content})
        content = [{"type": "text", "text": sample.question}]
        if not sample.history:
            content = [{"type": "image"} for _ in images] + content
        messages.append({"role": "user", "content": content})
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return Prompt(text=text, images=list(images))

    def box_format_for(self, model_type: str | None) -> str:
        return self.box_format_by_model_type.get(model_type or "", self.box_format)

    def parse(self, text: str) -> str:
        """Clean the raw output: the family's end markers and surrounding white space."""
        return text.strip()
