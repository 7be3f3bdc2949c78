"""mPLUG-Owl3 (remote code): written against its model card's interface, not run by the hf backend yet.

The model card's usage: ``AutoModel.from_pretrained(path, trust_remote_code=True)``, a processor made by
``model.init_processor(tokenizer)`` (there is no AutoProcessor), messages whose user content starts with one
``<|image|>`` per image, then ``processor(messages, images=images, videos=None)`` and
``model.generate(**inputs, tokenizer=tokenizer, decode_text=True)``. This module builds that prompt;
``processor_inputs`` shapes it into those messages. Loading needs ``--trust-remote-code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalkit.core.types import Prompt

from .base import FixedPromptAdapter

IMAGE_TAG = "<|image|>"


@dataclass(frozen=True)
class MplugOwl3Adapter(FixedPromptAdapter):
    def processor_inputs(self, prompts: list[Prompt]) -> dict[str, Any]:
        """One conversation per call (the remote processor takes a single message list)."""
        if len(prompts) != 1:
            raise ValueError("mPLUG-Owl3's processor takes one conversation at a time")
        messages = [{"role": "user", "content": prompts[0].text}, {"role": "assistant", "content": ""}]
        return {"messages": messages, "images": list(prompts[0].images), "videos": None}


ADAPTER = MplugOwl3Adapter(
    family="mplug_owl",
    default_checkpoint="mPLUG/mPLUG-Owl3-7B-240728",
    model_types=("mplugowl3",),
    checkpoints={
        "mplug-owl3-7b": "mPLUG/mPLUG-Owl3-7B-240728",
        "mplug-owl3-2b": "mPLUG/mPLUG-Owl3-2B-241014",
        "mplug-owl3-1b": "mPLUG/mPLUG-Owl3-1B-241014",
    },
    hf_model_class="AutoModel",
    image_placeholder=IMAGE_TAG,
    remote_code=True,
    hf_max_batch_size=1,
)
