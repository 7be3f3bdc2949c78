"""Embedding an image collection with two encoders, streaming and resumable.

Encoders (:func:`load_encoder`), by the checkpoint's ``model_type``:

- the *CLIP* side (image-text encoders): ``clip`` / ``clip_vision_model`` -> ``CLIPVisionModelWithProjection``'s
  ``image_embeds`` (what ``CLIPModel.get_image_features`` returns: the projected pooled output); ``siglip`` /
  ``siglip_vision_model`` -> ``SiglipVisionModel``'s ``pooler_output`` (``SiglipModel.get_image_features``). A full
  CLIP/SigLIP checkpoint loads only its vision tower;
- the *SSL* side (vision-only encoders): ``dinov2``, ``dinov2_with_registers``, ``vit`` -> the class token of the
  last hidden state (after the final layer norm), as MMVP used DINOv2.

Embeddings are L2-normalised float32, so a dot product is the cosine similarity.

Store (:class:`EmbeddingStore`, ``OUT/embeddings/``): ``meta.json`` names the encoders and the image folder; each
batch becomes one ``shard-NNNNN.npz`` (file names, both embeddings, the files that could not be read and why)
written to a temporary file, fsynced and renamed, so a shard is whole or absent. A killed run loses at most the
batch in flight; a resumed run embeds only the files in no shard, so no image is embedded twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
STORE_FORMAT = "evalkit-mine-embeddings/1"
# model_type -> (transformers class, how the embedding is read from its output)
CLIP_TYPES: dict[str, tuple[str, str]] = {
    "clip": ("CLIPVisionModelWithProjection", "image_embeds"),
    "clip_vision_model": ("CLIPVisionModelWithProjection", "image_embeds"),
    "siglip": ("SiglipVisionModel", "pooler_output"),
    "siglip_vision_model": ("SiglipVisionModel", "pooler_output"),
}
SSL_TYPES: dict[str, tuple[str, str]] = {
    "dinov2": ("Dinov2Model", "cls"),
    "dinov2_with_registers": ("Dinov2WithRegistersModel", "cls"),
    "vit": ("ViTModel", "cls"),
}
ROLES = {"clip": CLIP_TYPES, "ssl": SSL_TYPES}


def list_images(root: Path, exclude: Path | None = None) -> list[str]:
    """Image files under ``root`` (recursive, hidden entries skipped), as sorted relative POSIX paths."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"image folder {root} does not exist; pass a folder of images")
    skip = exclude.resolve() if exclude is not None else None
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (skip is None or (here / d).resolve() != skip))
        found += [(here / f).relative_to(root).as_posix() for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


@dataclass
class Encoder:
    """One image encoder: ``embed`` maps PIL images to L2-normalised float32 rows."""

    name: str
    role: str  # "clip" | "ssl"
    model_type: str
    model: Any
    processor: Any
    output: str  # "image_embeds" | "pooler_output" | "cls"
    device: str
    dtype: Any

    def embed(self, images: list[Any]) -> Any:
        import numpy as np
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model(pixel_values=pixels.to(self.device, self.dtype))
        vec = out.last_hidden_state[:, 0] if self.output == "cls" else getattr(out, self.output)
        return torch.nn.functional.normalize(vec.float(), dim=-1).cpu().numpy()

    @property
    def dim(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "projection_dim", None) if self.output == "image_embeds" else cfg.hidden_size)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model_type": self.model_type, "class": type(self.model).__name__,
                "output": self.output, "dtype": str(self.dtype).removeprefix("torch.")}


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Loading only a checkpoint's vision tower reports the text tower's weights as unused; that is intended."""
    from transformers.utils import logging as tf_logging

    level, bars = tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()
    tf_logging.set_verbosity_error()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        tf_logging.set_verbosity(level)
        if bars:
            tf_logging.enable_progress_bar()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_encoder(name: str, role: str, device: str = "cpu") -> Encoder:
    """Load ``name`` (a local ``save_pretrained`` folder or a hub id in the local cache) as the ``role`` encoder."""
    import torch
    import transformers as tf

    kinds = ROLES[role]
    try:
        with _quiet_transformers():
            config = tf.AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the {role} encoder {name!r} ({type(exc).__name__}); pass a local folder "
                         "written by save_pretrained, or a hub id already in the local Hugging Face cache") from exc
    model_type = config.model_type
    if model_type not in kinds:
        raise UsageError(f"{name} is a {model_type!r} checkpoint, not a {role} encoder this command reads "
                         f"({', '.join(sorted(kinds))})")
    class_name, output = kinds[model_type]
    if hasattr(config, "vision_config"):  # a full image-text checkpoint: load only its vision tower
        vision = config.vision_config
        if hasattr(config, "projection_dim") and output == "image_embeds":
            vision.projection_dim = config.projection_dim
        config = vision
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    with _quiet_transformers():
        extra = {"add_pooling_layer": False} if class_name == "ViTModel" else {}  # the class token is read
        model, info = getattr(tf, class_name).from_pretrained(name, config=config, dtype=dtype,
                                                              output_loading_info=True, **extra)
        processor = tf.AutoImageProcessor.from_pretrained(name)
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        why = "; a CLIP checkpoint without its projection cannot give CLIP image features" if role == "clip" else ""
        raise UsageError(f"{name} lacks weights of its {class_name} ({', '.join(missing[:3])}...){why}")
    model = model.to(device).eval()
    local = Path(name).expanduser()
    return Encoder(name=str(local.resolve()) if local.is_dir() else str(name), role=role, model_type=model_type,
                   model=model, processor=processor, output=output, device=device, dtype=dtype)


@dataclass
class Embeddings:
    """Everything the store holds: rows of ``clip`` and ``ssl`` are the images of ``files``, in order."""

    files: list[str]
    clip: Any  # np.ndarray (n, d_clip)
    ssl: Any  # np.ndarray (n, d_ssl)
    failed: dict[str, str] = field(default_factory=dict)  # file -> why it could not be read


class EmbeddingStore:
    """Append-only shards of embeddings in ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "meta.json"
        fingerprint = {"format": STORE_FORMAT, **fingerprint}
        if meta.is_file():
            try:
                old = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UsageError(f"{meta} is unreadable ({exc}); delete {self.folder} to embed again") from exc
            if old != fingerprint:
                changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise UsageError(f"{self.folder} holds embeddings of other settings ({', '.join(changed)} differ); "
                                 "use another --out, or delete that folder to embed again")
        else:
            write_atomic(meta, json.dumps(fingerprint, indent=2).encode("utf-8"))
        for stale in self.folder.glob("*.tmp"):  # a write cut short by a kill: its batch is embedded again
            stale.unlink()

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz"))

    def load(self) -> Embeddings:
        import numpy as np

        files: list[str] = []
        clips, ssls, failed = [], [], {}
        for shard in self.shards():
            try:
                with np.load(shard) as data:
                    files += [str(f) for f in data["files"]]
                    clips.append(data["clip"])
                    ssls.append(data["ssl"])
                    failed.update(zip((str(f) for f in data["failed"]), (str(e) for e in data["errors"])))
            except (OSError, ValueError, KeyError) as exc:
                raise UsageError(f"embedding shard {shard} is unreadable ({exc}); delete it and run again "
                                 "(its images are embedded again)") from exc
        if not clips:
            return Embeddings(files=[], clip=np.zeros((0, 0), np.float32), ssl=np.zeros((0, 0), np.float32))
        return Embeddings(files=files, clip=np.concatenate(clips), ssl=np.concatenate(ssls), failed=failed)

    def done(self) -> set[str]:
        import numpy as np

        out: set[str] = set()
        for shard in self.shards():
            with contextlib.suppress(OSError, ValueError, KeyError), np.load(shard) as data:
                out.update(str(f) for f in data["files"])
                out.update(str(f) for f in data["failed"])
        return out

    def append(self, files: list[str], clip: Any, ssl: Any, failed: dict[str, str]) -> Path:
        import io

        import numpy as np

        shards = self.shards()
        number = int(shards[-1].stem.split("-")[1]) + 1 if shards else 0
        buf = io.BytesIO()
        np.savez(buf, files=np.array(files, dtype=str), clip=clip, ssl=ssl,
                 failed=np.array(list(failed), dtype=str), errors=np.array(list(failed.values()), dtype=str))
        path = self.folder / f"shard-{number:05d}.npz"
        write_atomic(path, buf.getvalue())
        return path


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every platform)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_image(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


def embed_folder(images_dir: Path, files: list[str], store: EmbeddingStore, clip: Encoder, ssl: Encoder,
                 batch_size: int = 32, advance: Callable[[int], None] = lambda n: None) -> int:
    """Embed the ``files`` not yet in ``store``, a batch per shard; returns how many were embedded now."""
    from PIL import Image

    done = store.done()
    todo = [f for f in files if f not in done]
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        images, ok, failed = [], [], {}
        for name in batch:
            try:
                images.append(open_image(Path(images_dir) / name))
                ok.append(name)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
        if failed:
            log.warning("%d image(s) could not be read, e.g. %s", len(failed), next(iter(failed.items())))
        store.append(ok, clip.embed(images), ssl.embed(images), failed)
        advance(len(batch))
    return len(todo)
