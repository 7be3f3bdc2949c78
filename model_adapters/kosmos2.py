"""Kosmos-2: fixed prompts, ``<grounding>`` to ask for boxes, boxes as patch-index tokens.

Prompts follow the paper and the transformers docs: captioning "An image of", VQA "Question: {q} Answer:",
referring expressions "<grounding><phrase> {expr}</phrase>" (the model answers
``<object><patch_index_A><patch_index_B></object>``, format ``kosmos2``). The processor adds the image
tokens itself. Generation runs one prompt at a time on the hf backend: Kosmos-2 computes the positions of
generated tokens from the cache length, which counts left padding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import Checkpoint, DEFAULT_KIND, FixedPromptAdapter
from .protocols import Entry

_TAGS = re.compile(r"</?(?:phrase|object|grounding)>|</delimiter_of_multi_objects/>")
_PATCH = re.compile(r"<patch_index_\d{4}>")


@dataclass(frozen=True)
class Kosmos2Adapter(FixedPromptAdapter):
    def parse(self, text: str, kind: str | None = None) -> str:
        """Drop the grounding markup; keep patch-index tokens unless the task is known to want no boxes."""
        text = _TAGS.sub("", text)
        if kind is not None and kind != "grounding":
            text = _PATCH.sub("", text)
        return super().parse(re.sub(r"\s+", " ", text), kind)


ADAPTER = Kosmos2Adapter(
    family="kosmos2",
    default_checkpoint="microsoft/kosmos-2-patch14-224",
    model_types=("kosmos-2",),
    tiny_variants={"kosmos-2": ("kosmos2",)},
    checkpoints={"kosmos-2": Checkpoint("microsoft/kosmos-2-patch14-224", "kosmos-2")},
    box_format="kosmos2",
    hf_model_class="Kosmos2ForConditionalGeneration",
    instructions={
        "vqa": "Question: {question} Answer:",
        "caption": "An image of",
        "grounding": "<grounding><phrase> {expression}</phrase>",
        DEFAULT_KIND: "Question: {prompt} Answer:",
    },
    hf_max_batch_size=1,
    protocols={
        "paper": {
            "grounding": Entry("<grounding><phrase> {expression}</phrase>",
                               source="microsoft/kosmos-2-patch14-224 model card (phrase grounding: "
                                      "'<grounding><phrase> a snowman</phrase>')"),
        },
    },
)
