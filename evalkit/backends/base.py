"""The engine interface. A backend turns finished prompts into generations (or, for image-text encoders,
similarity logits); it knows no task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.core.types import Generation, GenerationSettings, Prompt

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.adapters.base import Adapter
    from evalkit.core.types import ModelSpec


@dataclass(frozen=True)
class BackendConfig:
    """User-facing engine settings (from the CLI)."""

    batch_size: int = 8
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    dtype: str = "auto"  # "auto" | "float32" | "float16" | "bfloat16"
    seed: int = 0
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # --backend-args key=value
    preloaded: Any = None  # (model, processor) already in memory (evalkit.evaluate): used instead of loading
    prefix_reuse: bool = True  # reuse the KV cache of an image's shared prompt prefix (--no-prefix-reuse: off)


class Backend(ABC):
    """Loads one model once, then generates for batches of prompts.

    ``generate`` receives prompts built by the adapter (``Prompt.text`` is the exact string, chat
    template applied, with the family's image placeholders) and returns one ``Generation`` per
    prompt, in order. A failure confined to one prompt is returned as ``Generation.error``; a
    failure of the whole batch may raise, and the runner records it on every sample of the batch.
    """

    name: str = "base"
    # True when the engine schedules a whole task itself (vLLM); the runner then submits larger chunks.
    schedules_itself: bool = False
    # True when GenerationSettings.num_beams > 1 is honoured (--gen-kwargs num_beams=N).
    beam_search: bool = False

    def __init__(self, spec: "ModelSpec", adapter: "Adapter", config: BackendConfig):
        self.spec = spec
        self.adapter = adapter
        self.config = config

    @abstractmethod
    def load(self) -> None:
        """Load weights and processor. Called once, timed as model load."""

    @abstractmethod
    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Generation]:
        """Generate for ``prompts`` in one go (the runner already batched and length-sorted them)."""

    def similarity(self, prompts: list[Prompt]) -> list[Generation]:
        """Image-text encoders (encoder tasks): per prompt, the logits of each of its ``texts`` against each of
        its images, as the JSON text of a (texts x images) matrix (see ``Generation``). Same failure rules as
        ``generate``."""
        raise NotImplementedError(f"the {self.name} backend does not run image-text encoders")

    def count_prompt_tokens(self, prompt: Prompt) -> int | None:
        """Token count of a prompt without generating, for length sorting; None if unknown."""
        return None

    def context_length(self) -> int | None:
        """The most tokens the model takes (prompt and output), when known: the runner fails a sample whose prompt
        has this many tokens or more ("prompt_too_long") before it reaches the engine."""
        return None

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        """(prompt tokens, of which served from a cached prefix) since load; None when the engine reuses no prefix."""
        return None

    def device_name(self) -> str:
        return "cpu"

    def peak_gpu_memory_mb(self) -> float | None:
        return None

    def effective_settings(self, settings: GenerationSettings) -> dict[str, Any]:
        """The decoding settings as the engine actually applied them (written to run.json)."""
        return settings.to_json()

    def close(self) -> None:
        """Release the engine (child processes, GPU memory)."""
