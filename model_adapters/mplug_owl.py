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

from .base import Checkpoint, FixedPromptAdapter

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
    tiny_missing={"mplugowl3": "no backend runs the family (not_runnable)"},
    checkpoints={
        "mplug-owl3-7b": Checkpoint("mPLUG/mPLUG-Owl3-7B-240728", "mplugowl3"),
        "mplug-owl3-2b": Checkpoint("mPLUG/mPLUG-Owl3-2B-241014", "mplugowl3"),
        "mplug-owl3-1b": Checkpoint("mPLUG/mPLUG-Owl3-1B-241014", "mplugowl3"),
    },
    hf_model_class="AutoModel",
    image_placeholder=IMAGE_TAG,
    remote_code=True,
    hf_max_batch_size=1,
    backends=(),  # no backend runs it (not_runnable says why); listed so that its prompt format stays tested
    not_runnable=("the hf backend loads a processor with AutoProcessor and decodes generate()'s token ids, but "
                  "mPLUG-Owl3's remote code has no AutoProcessor (model.init_processor(tokenizer) makes one) and its "
                  "generate() needs tokenizer= and decode_text=True; no backend calls it that way yet"),
)
