"""Fixture specs for the hub datasets of the benchmark tasks that ``hub_fixtures`` does not cover yet.

Built on :mod:`evalkit.testing.hub_fixtures`' generic machinery (feature declarations,
``write_split``, scenes, ``Ctx``). Schemas follow the dataset cards:

- ``lmms-lab/RefCOCOplus`` (val, testA, testB) and ``lmms-lab/RefCOCOg`` (val, test): RefCOCO's schema;
- ``lmms-lab/NoCaps`` (validation): image, image_coco_url, image_date_captured, image_file_name,
  image_height, image_width, image_id, image_license, image_open_images_id, annotations_ids,
  annotations_captions (10 per image);
- ``lmms-lab/flickr30k`` (test): image, caption (5), sentids, img_id, filename;
- ``lmms-lab/GQA``: two configs, ``testdev_balanced_instructions`` (id, imageId, question, answer,
  fullAnswer, isBalanced, groups, entailed, equivalent, types, semanticStr; the card's
  ``annotations``/``semantic`` columns are left out) and ``testdev_balanced_images`` (id, image),
  each ``<config>/testdev-0000i-of-0000N.parquet``. Several questions share an image; the image
  table is shuffled and sharded so the join is by id, never by position.
- ``MMVP/MMVP_VLM``: ``Questions.csv`` (Question ID, Type, Statement) and ``MLLM_VLM Images/<Type>/<id>.jpg``, as the
  authors' ``scripts/evaluate_vlm.py`` reads it; rows pair up (1, 2), (3, 4), ..., two pairs per visual pattern in
  the published order of the nine Types (the hub has fifteen).

:func:`write_fixture` accepts these names and every name ``hub_fixtures`` knows.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from evalkit.testing import hub_fixtures as hf
from evalkit.testing.hub_fixtures import I8, I32, I64, STR, Ctx, FixtureSpec, Image, Sequence
from evalkit.synthetic.shapes import KINDS

_REFCOCO = hf.SPECS["lmms-lab/RefCOCO"]


def _nocaps_row(c: Ctx) -> dict[str, Any]:
    scene = hf.random_scene(c.rng)
    name = f"{c.uid:016x}.jpg"
    captions = hf._captions(c.rng, scene) + hf._captions(c.rng, scene)
    return {
        "image": c.image(scene, name),
        "image_coco_url": f"https://s3.amazonaws.com/nocaps/val/{name}",
        "image_date_captured": "2018-11-06 11:04:33",
        "image_file_name": name,
        "image_height": scene.height,
        "image_width": scene.width,
        "image_id": c.index,
        "image_license": 0,
        "image_open_images_id": f"{c.uid:016x}",
        "annotations_ids": [c.index * 10 + k for k in range(10)],
        "annotations_captions": captions,
    }


def _flickr_row(c: Ctx) -> dict[str, Any]:
    scene = hf.random_scene(c.rng)
    img_id = str(c.uid)
    return {
        "image": c.image(scene, f"{img_id}.jpg", "JPEG"),
        "caption": hf._captions(c.rng, scene),
        "sentids": [str(c.uid * 5 + k) for k in range(5)],
        "img_id": img_id,
        "filename": f"{img_id}.jpg",
    }


MMVP_VLM_TYPES = ("Orientation", "Presence", "State", "Quantity", "Spatial", "Color", "Structural Character", "Text",
                  "Camera Perspective")


def _mmvp_vlm_row(c: Ctx) -> dict[str, Any]:
    """Pairs of rows: one shape, on the left in the first image and on the right in the second."""
    kind = random.Random(c.uid - 7 * (c.index % 2)).choice(KINDS)  # seeded by the pair's first row
    first = c.index % 2 == 0
    return {
        "Question ID": c.index + 1,
        "Type": MMVP_VLM_TYPES[(c.index // 4) % len(MMVP_VLM_TYPES)],
        "Statement": f"a {kind} on the {'left' if first else 'right'} of the image",
        "image": c.image(hf.random_scene(c.rng, cells=[0 if first else 1], kinds=[kind]), f"{c.index + 1}.jpg", "JPEG"),
    }


TASK_SPECS: dict[str, FixtureSpec] = {
    s.hub_id: s
    for s in [
        dataclasses.replace(_REFCOCO, hub_id="lmms-lab/RefCOCOplus", splits=("val", "testA", "testB")),
        dataclasses.replace(_REFCOCO, hub_id="lmms-lab/RefCOCOg", splits=("val", "test")),
        FixtureSpec("lmms-lab/NoCaps", ("validation",), {
            "image": Image(), "image_coco_url": STR, "image_date_captured": STR, "image_file_name": STR,
            "image_height": I32, "image_width": I32, "image_id": I32, "image_license": I8,
            "image_open_images_id": STR, "annotations_ids": Sequence(I32), "annotations_captions": Sequence(STR),
        }, _nocaps_row),
        FixtureSpec("lmms-lab/flickr30k", ("test",), {
            "image": Image(), "caption": Sequence(STR), "sentids": Sequence(STR), "img_id": STR, "filename": STR,
        }, _flickr_row),
        FixtureSpec("MMVP/MMVP_VLM", ("train",), {"Question ID": I64, "Type": STR, "Statement": STR}, _mmvp_vlm_row,
                    image_file=lambda r: f"MLLM_VLM Images/{r['Type']}/{r['Question ID']}.jpg",
                    csv_file="Questions.csv"),
    ]
}

# --- GQA: instructions and images in two configs ---------------------------------------------------

GQA_INSTRUCTIONS = "testdev_balanced_instructions"
GQA_IMAGES = "testdev_balanced_images"
_GQA_FEATURES = {
    "id": STR, "imageId": STR, "question": STR, "answer": STR, "fullAnswer": STR,
    "isBalanced": hf.Value("bool"), "groups": {"global": STR, "local": STR},
    "entailed": Sequence(STR), "equivalent": Sequence(STR),
    "types": {"structural": STR, "semantic": STR, "detailed": STR}, "semanticStr": STR,
}
_GQA_IMAGE_FEATURES = {"id": STR, "image": Image()}
_STRUCTURAL = {"how many": ("query", "attr"), "what color is the": ("query", "attr"),
               "is there a": ("verify", "obj")}


def write_gqa(root: Path, n: int = 20, seed: int = 0, corrupt: int = 0) -> Path:
    """``n`` test-dev questions over about n/3 images; ``corrupt`` truncated images. Returns the folder."""
    folder = Path(root) / "lmms-lab" / "GQA"
    rng = random.Random(f"lmms-lab/GQA:{seed}")
    n_images = max(2, n // 3)
    scenes = {f"n{100000 + 37 * i + seed}": hf.random_scene(rng) for i in range(n_images)}
    image_ids = list(scenes)
    questions = []
    for i in range(n):
        image_id = image_ids[i % n_images] if i < n_images else rng.choice(image_ids)
        question, qtype, _, answer, _ = hf._question(rng, scenes[image_id])
        structural, semantic = _STRUCTURAL[qtype]
        questions.append({
            "id": str(20_000_000 + 1000 * seed + i), "imageId": image_id, "question": question,
            "answer": answer, "fullAnswer": f"The answer is {answer}.", "isBalanced": True,
            "groups": {"global": None, "local": f"{i % 7:02d}-x"}, "entailed": [], "equivalent": [],
            "types": {"structural": structural, "semantic": semantic, "detailed": qtype.replace(" ", "")},
            "semanticStr": f"select: {question.split()[-1].rstrip('?')}",
        })
    images = [{"id": k, "image": Ctx(rng, 0, "testdev", 0).image(scene, f"{k}.jpg")} for k, scene in scenes.items()]
    rng.shuffle(images)
    for i in rng.sample(range(len(images)), corrupt):
        images[i]["image"] = hf._corrupt(images[i]["image"])
    hf.write_split(folder, "testdev", questions, _GQA_FEATURES, config=GQA_INSTRUCTIONS)
    hf.write_split(folder, "testdev", images, _GQA_IMAGE_FEATURES, config=GQA_IMAGES,
                   shards=2 if len(images) >= 4 else 1)
    return folder


def write_fixture(name: str, root: Path, n: int = 20, seed: int = 0, corrupt: int = 0,
                  layout: str = "hub") -> Path:
    """:func:`hub_fixtures.write_fixture`, also for the datasets of this module."""
    if name == "lmms-lab/GQA":
        if layout != "hub":
            raise ValueError("lmms-lab/GQA fixtures exist only in the hub layout")
        return write_gqa(root, n, seed, corrupt)
    for hub_id, spec in TASK_SPECS.items():
        hf.SPECS.setdefault(hub_id, spec)
    return hf.write_fixture(name, root, n=n, seed=seed, corrupt=corrupt, layout=layout)


FIXTURES: tuple[str, ...] = (*TASK_SPECS, "lmms-lab/GQA")
