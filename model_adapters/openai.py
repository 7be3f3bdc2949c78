"""Served models behind an OpenAI-compatible API (``--model openai:<served-model> --backend openai``).

The server applies its own chat template, so the prompt is the OpenAI ``messages`` list: the base
adapter's messages (images first in the first user turn, then the task's text; a dialogue's earlier
turns before it) rendered by the backend's ``ChatProcessor`` into JSON. ``build_prompt`` adds the
images' encoded bytes taken from the sample's ``ImageRef``s, so JPEG (and PNG) sources reach the
server byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.core.types import Prompt, Sample

from .base import Adapter

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image


@dataclass(frozen=True)
class OpenAIAdapter(Adapter):
    def build_prompt(self, sample: Sample, images: list["Image"], processor: Any, kind: str | None = None) -> Prompt:
        from evalkit.backends.openai import ChatPrompt, encode_image

        prompt = super().build_prompt(sample, images, processor, kind)
        refs = list(sample.images) + [None] * (len(images) - len(sample.images))
        encoded = [encode_image(ref, image) for ref, image in zip(refs, images)]
        return ChatPrompt(text=prompt.text, images=prompt.images, encoded=encoded)


ADAPTER = OpenAIAdapter(
    family="openai",
    default_checkpoint="gpt-4o",
    backends=("openai",),  # never loaded locally: the server holds the weights
)
