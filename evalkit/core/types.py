"""Records passed between the layers: Task -> Adapter -> Backend -> Adapter.parse -> Task.score.

Only plain dataclasses live here; nothing imports torch. The result-file models (what is
written to disk) live in ``evalkit.core.results``.
"""

from __future__ import annotations

import hashlib
import io
import warnings
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
    "data",  # the record has nothing to score against (no ground-truth answer, no reference caption)
    "generation",  # the backend raised while generating this sample's batch
    "prompt",  # the adapter could not build a prompt (e.g. too many images)
    "scoring",  # the scorer raised
    "judge",  # an LLM judge failed or its verdict could not be parsed
    "image_path",  # an image path points outside the dataset's folder: never opened
    "prompt_too_long",  # the prompt has more tokens than the model's context: never generated
)

# Decoded images are capped at this many pixels (width x height), checked from the header before any pixel
# is decoded: 8192 x 8192, 192 MB as RGB. EVALKIT_MAX_IMAGE_PIXELS overrides it (0: no cap).
MAX_IMAGE_PIXELS = 8192 * 8192


def max_image_pixels() -> int:
    """The decoded-pixel cap in force (EVALKIT_MAX_IMAGE_PIXELS, else MAX_IMAGE_PIXELS); 0 means none."""
    import os

    raw = os.environ.get("EVALKIT_MAX_IMAGE_PIXELS", "").strip()
    if not raw:
        return MAX_IMAGE_PIXELS
    try:
        value = int(raw)
    except ValueError:
        from evalkit.core.errors import UsageError

        raise UsageError(f"EVALKIT_MAX_IMAGE_PIXELS={raw!r}: give a whole number of pixels (0: no cap)") from None
    return max(value, 0)


def confined_path(root: str | Path, name: str | Path) -> Path:
    """``name`` resolved against the dataset folder ``root``; SampleError("image_path") when it leaves it.

    Lexical (``..`` and absolute paths), so symlinks inside the folder (a hub cache snapshot) still work, while
    a dataset cell such as ``../../etc/passwd`` or ``/etc/passwd`` is never opened.
    """
    import os

    base = os.path.normpath(os.path.abspath(root))
    full = os.path.normpath(os.path.join(base, os.fspath(name)))
    if full != base and not full.startswith(base.rstrip(os.sep) + os.sep):
        raise SampleError("image_path", f"image path {os.fspath(name)!r} is outside the dataset folder {base}")
    return Path(full)


@dataclass(frozen=True)
class ImageRef:
    """An image decoded only when ``load`` is called, so a stream holds compressed bytes at most.

    ``root``: the dataset folder a ``path`` must stay inside (see :func:`confined_path`); None for paths the
    task built itself. ``load`` refuses images above :func:`max_image_pixels` before decoding any pixel.
    """

    data: bytes | None = None
    path: str | None = None
    root: str | None = None

    def load(self) -> "Image":
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():  # our own cap (_check_pixels) replaces Pillow's bomb warning
                if max_image_pixels():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                if self.data is not None:
                    img = Image.open(io.BytesIO(self.data))
                elif self.path is not None:
                    img = Image.open(self.file())
                else:
                    raise SampleError("image_decode", "record has no image bytes and no path")
            _check_pixels(img.size)  # the header is read; no pixel is decoded yet
            img.load()
            return img.convert("RGB")
        except SampleError:
            raise
        except Image.DecompressionBombError as exc:  # not an OSError: Pillow's own cap (2 x MAX_IMAGE_PIXELS)
            raise SampleError("image_decode", f"decompression bomb: {exc}") from exc
        except UnidentifiedImageError as exc:
            size = f"{len(self.data)} bytes" if self.data is not None else self.path
            raise SampleError("image_decode", f"not a decodable image ({size})") from exc
        except (OSError, ValueError) as exc:
            raise SampleError("image_decode", f"{type(exc).__name__}: {exc}") from exc

    def file(self) -> str:
        """The image file to open: ``path``, checked to lie inside ``root`` (SampleError "image_path" if not)."""
        if self.path is None:
            raise SampleError("image_decode", "record has no image path")
        return str(confined_path(self.root, self.path)) if self.root is not None else self.path

    def digest(self) -> str:
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data)
        elif self.path is not None:
            h.update(self.path.encode())
        return h.hexdigest()[:16]


def _check_pixels(size: tuple[int, int]) -> None:
    cap = max_image_pixels()
    width, height = size
    if cap and width * height > cap:
        raise SampleError("image_decode", f"image is {width}x{height} = {width * height} pixels, above the cap of "
                                          f"{cap} (EVALKIT_MAX_IMAGE_PIXELS); not decoded")


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
    num_beams: int = 1  # > 1: beam search (hf backend only; --gen-kwargs num_beams=N)

    def to_json(self) -> dict[str, Json]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "num_beams": self.num_beams,
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
    # A model object in memory (evalkit.evaluate): the hash of its weights, computed when the spec was made.
    weights_digest: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.local_path).is_dir()

    def fingerprint(self) -> str | None:
        """sha256 over the weight files' bytes (local checkpoints) or of the in-memory weights; hub checkpoints
        are pinned by revision."""
        if self.weights_digest is not None:
            return self.weights_digest
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
