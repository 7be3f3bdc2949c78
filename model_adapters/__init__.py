"""Model families. Each module defines ``ADAPTER``; the registry imports it only when asked.

Generative MLLM families, plus image-text encoders (``clip``, ``siglip``) that run only encoder tasks.

Adapter modules import nothing heavy, so listing and family detection stay fast.
"""

from __future__ import annotations

from evalkit.core.registry import Registry

from .base import Adapter

ADAPTERS: Registry[Adapter] = Registry("model", entry_point_group="evalkit.adapters")
ADAPTERS.register("llava", "evalkit.adapters.llava:ADAPTER")
ADAPTERS.register("openai", "evalkit.adapters.openai:ADAPTER")  # served models (--backend openai)
for _family in ("blip2", "instructblip", "qwen_vl", "paligemma", "idefics", "kosmos2", "internvl", "florence2",
                "mplug_owl", "clip", "siglip"):  # clip, siglip: image-text encoders (EncoderAdapter)
    ADAPTERS.register(_family, f"evalkit.adapters.{_family}:ADAPTER")


def get_adapter(family: str) -> Adapter:
    return ADAPTERS.get(family)


def all_adapters() -> list[Adapter]:
    return [ADAPTERS.get(name) for name in ADAPTERS.names()]
