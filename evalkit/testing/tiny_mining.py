"""Tiny image encoders and a planted image set for testing ``evalkit mine-pairs`` (tests and bench only).

The two encoders are the real transformers classes (``CLIPVisionModelWithProjection`` from ``CLIPVisionConfig``,
``Dinov2Model`` from ``Dinov2Config``; one layer, 64 wide), saved with ``save_pretrained`` together with their image
processors, so they load through the same code as ``openai/clip-vit-large-patch14`` and ``facebook/dinov2-large``.
Their weights are random (N(0, 1/fan_in)) with a few set by construction so that the similarities they give are
predictable:

- class token and position embeddings are zero and the attention's query and key maps are zero (every token attends
  to all tokens equally), and the MLP's output map is zero: the class token's output is then a fixed random linear
  map of the mean of the layer-normed patch embeddings, so two images are as similar as their patches are;
- the CLIP processor centre-crops a 32 x 32 square (the middle third of a 96 x 32 image): CLIP does not see the
  left and right thirds; the DINOv2 processor resizes the whole image to 96 x 32: DINOv2 sees all of it.

``write_planted_images`` draws noise images 96 x 32 and plants pairs of images that share their centre (each pair
its own):

- a *CLIP-blind pair*: the second image is the first with its left and right thirds inverted (255 - x). CLIP sees
  identical crops (cosine 1); DINOv2 sees 8 of 12 patches negated (cosine well below 0.6). These are the pairs
  ``mine-pairs`` must find, and only these;
- a *duplicate decoy*: the second image is the first with a little noise on its outer thirds. Identical for CLIP
  and near-identical for DINOv2 (cosine above 0.9): a near-duplicate, not a CLIP-blind pair, so the SSL threshold
  must drop it;
- unrelated noise images: different for both encoders (CLIP cosines far below 0.95).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.testing.tiny_models import save

TOWER = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1)
SIDE, WIDTH = 32, 96  # image height and width; CLIP sees the centre SIDE x SIDE square
ZEROED = ("class_embedding", "cls_token", "mask_token", "position_embedding", "q_proj", "k_proj",
          "attention.attention.query", "attention.attention.key", "fc2")


def _construct(model: Any, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(part in name for part in ZEROED):
                param.zero_()
            elif param.dim() >= 2:
                param.normal_(0.0, param.shape[-1] ** -0.5)
    return model.eval()


def build_clip_vision(folder: str | Path, seed: int = 0) -> Path:
    """A CLIP image encoder with projection (32 px centre crop, 16 px patches, 32-d embeddings) and its processor."""
    import transformers as tf

    config = tf.CLIPVisionConfig(image_size=SIDE, patch_size=16, projection_dim=32, **TOWER)
    model = _construct(tf.CLIPVisionModelWithProjection(config), seed)
    processor = tf.CLIPImageProcessor(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE})
    return save(model, processor, folder)


def build_dinov2(folder: str | Path, seed: int = 1) -> Path:
    """A DINOv2 encoder (16 px patches, the whole 96 x 32 image) and its processor (no crop)."""
    import transformers as tf

    model = _construct(tf.Dinov2Model(tf.Dinov2Config(image_size=SIDE, patch_size=16, **TOWER)), seed)
    processor = tf.BitImageProcessor(size={"height": SIDE, "width": WIDTH}, do_center_crop=False,
                                     image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return save(model, processor, folder)


@dataclass
class PlantedSet:
    folder: Path
    files: list[str]  # every image written (relative paths)
    blind_pairs: set[tuple[str, str]]  # the CLIP-blind pairs, each sorted
    decoys: set[tuple[str, str]]  # near-duplicates (close for both encoders), each sorted


def write_planted_images(folder: str | Path, pairs: int = 4, decoys: int = 2, unrelated: int = 6,
                         seed: int = 0) -> PlantedSet:
    """``pairs`` CLIP-blind pairs, ``decoys`` near-duplicate pairs and ``unrelated`` noise images as PNG files in
    ``folder`` (the last blind pair in a subfolder, to cover recursive listing); each pair has its own centre."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    outer = (slice(0, WIDTH // 3), slice(2 * WIDTH // 3, WIDTH))
    files: list[str] = []

    def write(name: str, pixels: Any) -> str:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        files.append(name)
        return name

    def planted(prefix: str, change: Any) -> tuple[str, str]:
        base = rng.integers(0, 256, (SIDE, WIDTH, 3))
        other = base.copy()
        for cols in outer:
            other[:, cols] = change(base[:, cols])
        names = write(f"{prefix}_a.png", base), write(f"{prefix}_b.png", other)
        return min(names), max(names)

    blind = {planted(f"{'sub/' if k == pairs - 1 else ''}blind{k}", lambda x: 255 - x) for k in range(pairs)}
    near = {planted(f"dup{k}", lambda x: np.clip(x + rng.integers(-6, 7, x.shape), 0, 255)) for k in range(decoys)}
    for u in range(unrelated):
        write(f"noise_{u}.png", rng.integers(0, 256, (SIDE, WIDTH, 3)))
    return PlantedSet(folder=folder, files=sorted(files), blind_pairs=blind, decoys=near)
