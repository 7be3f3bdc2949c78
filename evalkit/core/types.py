"""Records passed between the layers: Task -> Adapter -> Backend -> Adapter.parse -> Task.score.

Only plain dataclasses live here; nothing imports torch. The result-file models (what is
written to disk) live in ``evalkit.core.results``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

# A value that survives a JSON round trip unchanged.
Json = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]


class SampleError(Exception):
    """A failure confined to one sample. ``category`` is one of ERROR_CATEGORIES."""

    def __init__(self, category: str, message: str):
        super().__init__(f"{category}: {message}")
        self.category = category
        self.message = message

    def __reduce__(self) -> tuple:  # picklable across processes (Ray replicas, multiprocessing)
        return (SampleError, (self.category, self.message))


ERROR_CATEGORIES = (
    "image_decode",  # the image bytes could not be decoded
    "bad_record",  # a dataset record is missing a field the task needs
    "generation",  # the backend raised while generating this sample's batch
    "prompt",  # the adapter could not build a prompt (e.g. too many images)
    "scoring",  # the scorer raised
    "judge",  # an LLM judge failed or its verdict could not be parsed
)


@dataclass(frozen=True)
class ImageRef:
    """An image decoded only when ``load`` is called, so a stream holds compressed bytes at most."""

    data: bytes | None = None
    path: str | None = None

    def load(self) -> "Image":
        from PIL import Image, UnidentifiedImageError

        try:
            if self.data is not None:
                img = Image.open(io.BytesIO(self.data))
            elif self.path is not None:
                img = Image.open(self.path)
            else:
                raise SampleError("image_decode", "record has no image bytes and no path")
            img.load()
            return img.convert("RGB")
        except SampleError:
            raise
        except UnidentifiedImageError as exc:
            size = f"{len(self.data)} bytes" if self.data is not None else self.path
            raise SampleError("image_decode", f"not a decodable image ({size})") from exc
        except (OSError, ValueError) as exc:
            raise SampleError("image_decode", f"{type(exc).__name__}: {exc}") from exc

    def digest(self) -> str:
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data)
        elif self.path is not None:
            h.update(self.path.encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Turn:
    """One earlier exchange in a multi-turn dialogue."""

    role: str  # "user" | "assistant"
    content: str


@dataclass
class Sample:
    """A model-neutral benchmark item.

    ``question`` is the full user text for this turn, task instruction included
    (e.g. "What is this?\\nAnswer the question using a single word or phrase.").
    ``images`` are attached to the first user turn. ``history`` holds earlier turns of a dialogue.
    Encoder tasks (kind "encoder", e.g. MMVP-VLM) ask no question: ``texts`` are matched against ``images``
    by an image-text encoder (CLIP, SigLIP).
    """

    id: str
    question: str
    images: list[ImageRef] = field(default_factory=list)
    target: Json = None
    metadata: dict[str, Json] = field(default_factory=dict)
    history: list[Turn] = field(default_factory=list)
    # Encoder tasks: the texts an image-text encoder scores against every image of the sample.
    texts: list[str] = field(default_factory=list)
    # Set when the record itself is unusable (missing field...): the sample is recorded as an error.
    load_error: SampleError | None = None


@dataclass(frozen=True)
class GenerationSettings:
    """What a task asks of decoding. Both backends give these the same meaning."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ()
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0

    def to_json(self) -> dict[str, Json]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


@dataclass
class Prompt:
    """Exactly what a backend receives: the final text (chat template applied) and decoded images.

    An encoder prompt (``Backend.similarity``) carries the texts to embed in ``texts``; its ``text`` is
    them joined by newlines, for the record and the prompt hash.
    """

    text: str
    images: list["Image"] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


@dataclass
class Generation:
    """What a backend returns for one prompt.

    From ``Backend.similarity`` (image-text encoders), ``text`` is the JSON of the raw logit matrix,
    one row per text of the prompt and one column per image, and nothing is generated.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    n_prompt_tokens: int = 0
    n_generated_tokens: int = 0
    finish_reason: str = "length"  # "stop" | "length" | "eos"
    error: SampleError | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what the user typed
    family: str
    checkpoint: str  # hub id or absolute local path
    local_path: str  # what from_pretrained receives (a folder, or the hub id)
    revision: str | None = None
    model_type: str | None = None  # config.json model_type when known

    @property
    def is_local(self) -> bool:
        return Path(self.local_path).is_dir()

    def fingerprint(self) -> str | None:
        """sha256 over the weight files' bytes (local checkpoints); hub checkpoints are pinned by revision."""
        if not self.is_local:
            return None
        folder = Path(self.local_path)
        files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin", ".pt"})
        if not files:
            return None
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()[:16]
