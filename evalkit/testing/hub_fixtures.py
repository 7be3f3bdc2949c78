"""Seeded, deterministic synthetic datasets in the exact public hub schemas.

Tests run the real loaders (:mod:`evalkit.core.data`) and the real tasks on these. Generic machinery
(HF-style feature declarations -> arrow schema, parquet shards in the hub repository layout or a
``datasets.save_to_disk`` folder, CSV tables, image files) plus one small declarative
:class:`FixtureSpec` per dataset: its hub id, splits, features and a row builder.

Images are small PIL drawings (32-96 px, often non-square) of coloured shapes, encoded as JPEG
or PNG; the questions, answers, boxes and captions describe what is drawn. ``corrupt=k``
truncates the image bytes of ``k`` rows per split (chosen by the seed) for error-path tests.

Schemas (column names and arrow types) follow the dataset cards: lmms-lab/VQAv2, lmms-lab/RefCOCO,
lmms-lab/OK-VQA, lmms-lab/textvqa, lmms-lab/COCO-Caption2017, yerevann/coco-karpathy (which holds
COCO URLs, no images: the fixture writes the images at ``<filepath>/<filename>`` in the dataset
folder, the layout of a local COCO mirror), MMVP/MMVP (``Questions.csv`` + ``MMVP Images/<i>.jpg``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from evalkit.synthetic.shapes import COLORS, KINDS, NUMBER_WORDS

# --- feature declarations (the vocabulary of HF dataset cards) ----------------------------------


@dataclass(frozen=True)
class Value:
    """A scalar column: "string", "int64", "int32", "int8", "float32", ..."""

    dtype: str


@dataclass(frozen=True)
class Image:
    """An image column, stored as struct{bytes: binary, path: string}."""


@dataclass(frozen=True)
class Sequence:
    """``sequence: <feature>`` in a card: a list column."""

    feature: "Feature"


# A dict is a struct; a one-element list ``[feature]`` is a card's ``list:`` (a list of that).
Feature = Union[Value, Image, Sequence, dict[str, Any], list[Any]]
Features = dict[str, Feature]

STR, I64, I32, I8, F32 = Value("string"), Value("int64"), Value("int32"), Value("int8"), Value("float32")


def arrow_type(feature: Feature) -> Any:
    """The arrow type the hub's parquet files use for ``feature``."""
    import pyarrow as pa

    if isinstance(feature, Value):
        return pa.string() if feature.dtype == "string" else pa.type_for_alias(feature.dtype)
    if isinstance(feature, Image):
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    if isinstance(feature, Sequence):
        return pa.list_(arrow_type(feature.feature))
    if isinstance(feature, list):
        return pa.list_(arrow_type(feature[0]))
    return pa.struct([(k, arrow_type(v)) for k, v in feature.items()])


def hf_features(feature: Feature) -> Any:
    """``feature`` in the JSON form ``datasets`` stores in schema metadata and dataset_info.json."""
    if isinstance(feature, Value):
        return {"dtype": feature.dtype, "_type": "Value"}
    if isinstance(feature, Image):
        return {"_type": "Image"}
    if isinstance(feature, Sequence):
        return {"feature": hf_features(feature.feature), "_type": "Sequence"}
    if isinstance(feature, list):
        return [hf_features(feature[0])]
    return {k: hf_features(v) for k, v in feature.items()}


def arrow_schema(features: Features) -> Any:
    import pyarrow as pa

    meta = {"huggingface": json.dumps({"info": {"features": hf_features(features)}})}
    return pa.schema([(k, arrow_type(v)) for k, v in features.items()], metadata=meta)


# --- generic writers ------------------------------------------------------------------------------

ROW_GROUP_SIZE = 100  # what `datasets` uses for image datasets


def write_split(
    folder: Path,
    split: str,
    rows: list[dict[str, Any]],
    features: Features,
    layout: str = "hub",
    config: str | None = None,
    shards: int = 1,
) -> list[Path]:
    """Write one split under the dataset ``folder``; returns the table files written.

    layout "hub": ``<config or data>/<split>-0000i-of-0000N.parquet``; "save_to_disk": the split
    folder of a DatasetDict (``<split>/data-00000-of-00001.arrow``, ``state.json``,
    ``dataset_info.json``); call :func:`write_dataset_dict` once all splits are written.
    """
    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=arrow_schema(features))
    if layout == "hub":
        import pyarrow.parquet as pq

        base = folder / (config or "data")
        base.mkdir(parents=True, exist_ok=True)
        per = -(-len(rows) // shards) if rows else 0
        paths = []
        for i in range(shards):
            path = base / f"{split}-{i:05d}-of-{shards:05d}.parquet"
            pq.write_table(table.slice(i * per, per), path, row_group_size=ROW_GROUP_SIZE)
            paths.append(path)
        return paths
    if layout == "save_to_disk":
        split_dir = folder / split
        split_dir.mkdir(parents=True, exist_ok=True)
        path = split_dir / "data-00000-of-00001.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=ROW_GROUP_SIZE)
        state = {
            "_data_files": [{"filename": path.name}],
            "_fingerprint": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": split,
        }
        (split_dir / "state.json").write_text(json.dumps(state, indent=2))
        info = {"features": hf_features(features), "splits": {split: {"name": split, "num_examples": len(rows)}}}
        (split_dir / "dataset_info.json").write_text(json.dumps(info, indent=2))
        return [path]
    raise ValueError(f"unknown layout {layout!r}; use 'hub' or 'save_to_disk'")


def write_dataset_dict(folder: Path, splits: list[str]) -> None:
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": splits}))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A drawn shape: kind, colour name, pixel box (x, y, w, h)."""

    kind: str
    color: str
    box: tuple[int, int, int, int]
    image_width: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"

    @property
    def side(self) -> str:
        return "left" if self.box[0] + self.box[2] / 2 < self.image_width / 2 else "right"

    def polygon(self) -> list[float]:
        """The outline as a flat [x1, y1, x2, y2, ...] list (COCO segmentation style)."""
        x, y, w, h = self.box
        if self.kind == "triangle":
            return [x + w / 2, y, x, y + h, x + w, y + h]
        return [x, y, x + w, y, x + w, y + h, x, y + h]


@dataclass(frozen=True)
class Scene:
    """A width x height image: a light background, shapes in distinct cells of a 2x2 grid, a word."""

    width: int
    height: int
    shapes: tuple[Shape, ...]
    text: str = ""

    def encode(self, fmt: str) -> bytes:
        from PIL import Image as PILImage
        from PIL import ImageDraw

        img = PILImage.new("RGB", (self.width, self.height), (250, 250, 245))
        draw = ImageDraw.Draw(img)
        for s in self.shapes:
            x, y, w, h = s.box
            fill = COLORS[s.color]
            if s.kind == "circle":
                draw.ellipse([x, y, x + w - 1, y + h - 1], fill=fill)
            elif s.kind == "square":
                draw.rectangle([x, y, x + w - 1, y + h - 1], fill=fill)
            else:
                draw.polygon([(x + w / 2, y), (x, y + h - 1), (x + w - 1, y + h - 1)], fill=fill)
        if self.text:
            draw.text((2, self.height - 12), self.text, fill=(0, 0, 0))
        buf = io.BytesIO()
        img.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return buf.getvalue()


def random_scene(rng: random.Random, text: str = "", cells: list[int] | None = None,
                 kinds: list[str] | None = None) -> Scene:
    """1-4 shapes in distinct grid cells (``cells``: 0 top-left .. 3 bottom-right) of a random size."""
    width, height = rng.randint(32, 96), rng.randint(32, 96)
    if cells is None:
        cells = rng.sample(range(4), rng.randint(1, 4))
    cw, ch = width // 2, height // 2
    shapes = []
    for i, cell in enumerate(cells):
        kind = kinds[i] if kinds else rng.choice(KINDS)
        if kind == "triangle":  # triangles may be stretched; circles and squares stay round/square
            w, h = rng.randint(max(4, cw // 2), cw - 2), rng.randint(max(4, ch // 2), ch - 2)
        else:
            w = h = rng.randint(max(4, min(cw, ch) // 2), min(cw, ch) - 2)
        x = (cell % 2) * cw + rng.randint(1, cw - w - 1)
        y = (cell // 2) * ch + rng.randint(1, ch - h - 1)
        shapes.append(Shape(kind, rng.choice(sorted(COLORS)), (x, y, w, h), width))
    return Scene(width, height, tuple(shapes), text)


# --- per-row context and answer variation --------------------------------------------------------


@dataclass
class Ctx:
    """What a row builder gets: the row's rng, index in the split, split name and a unique id."""

    rng: random.Random
    index: int
    split: str
    uid: int  # unique across splits, COCO-like magnitude

    def image(self, scene: Scene, name: str, fmt: str | None = None) -> dict[str, Any]:
        """An image cell {"bytes", "path"} as the hub stores it."""
        fmt = fmt or self.rng.choice(["JPEG", "PNG"])
        return {"bytes": scene.encode(fmt), "path": name}


def _variants(answer: str) -> list[str]:
    """Ways annotators wrote ``answer``: casing, punctuation, articles, number words."""
    out = [answer.capitalize(), f"{answer}.", f" {answer} "]
    if answer.isdigit() and int(answer) < len(NUMBER_WORDS):
        out += [NUMBER_WORDS[int(answer)], NUMBER_WORDS[int(answer)].capitalize()]
    elif answer not in ("yes", "no"):
        out += [f"a {answer}", f"the {answer}"]
    return out


def ten_answers(rng: random.Random, answer: str, wrong: list[str]) -> list[str]:
    """Ten VQA-style human answers: mostly ``answer``, some written differently, a few wrong."""
    out = []
    for _ in range(10):
        r = rng.random()
        out.append(answer if r < 0.55 else rng.choice(_variants(answer)) if r < 0.85 else rng.choice(wrong))
    return out


def _question(rng: random.Random, scene: Scene) -> tuple[str, str, str, str, list[str]]:
    """(question, question_type, answer_type, answer, wrong answers) about ``scene``."""
    kind = rng.choice(sorted({s.kind for s in scene.shapes}))
    count = sum(s.kind == kind for s in scene.shapes)
    q = rng.choice(["count", "yesno", "color"] if count == 1 else ["count", "yesno"])
    if q == "count":
        return (f"How many {kind}s are there?", "how many", "number", str(count),
                [str(count + 1), str(max(count - 1, 0))])
    if q == "color":
        color = next(s.color for s in scene.shapes if s.kind == kind)
        return (f"What color is the {kind}?", "what color is the", "other", color,
                [c for c in sorted(COLORS) if c != color])
    color = rng.choice(sorted(COLORS))
    yes = any(s.kind == kind and s.color == color for s in scene.shapes)
    return (f"Is there a {color} {kind}?", "is there a", "yes/no", "yes" if yes else "no",
            ["no" if yes else "yes"])


def _captions(rng: random.Random, scene: Scene) -> list[str]:
    names = [s.name for s in scene.shapes]
    listing = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return [
        f"A {listing} on a plain background.",
        f"an image showing a {listing}",
        f"A picture with {len(names)} shape{'s' if len(names) > 1 else ''}.",
        f"Simple shapes: {listing}.",
        f"A {rng.choice(['small', 'simple', 'plain'])} drawing of a {listing}.",
    ]


# --- row builders (one per dataset) -------------------------------------------------------------


def _vqav2_row(c: Ctx) -> dict[str, Any]:
    scene = random_scene(c.rng)
    question, qtype, atype, answer, wrong = _question(c.rng, scene)
    hidden = c.split != "validation"
    answers = ten_answers(c.rng, answer, wrong)
    confidence = ["yes" if a == answer else c.rng.choice(["yes", "maybe", "no"]) for a in answers]
    return {
        "question_type": None if hidden else qtype,
        "multiple_choice_answer": None if hidden else answer,
        "answers": None if hidden else [
            {"answer": a, "answer_confidence": conf, "answer_id": i + 1}
            for i, (a, conf) in enumerate(zip(answers, confidence))
        ],
        "image_id": c.uid,
        "answer_type": None if hidden else atype,
        "question_id": c.uid * 1000 + c.index % 3,
        "question": question,
        "image": c.image(scene, f"COCO_val2014_{c.uid:012d}.jpg"),
    }


REFCOCO_PROMPT = "Please carefully observe the area circled in the image and come up with a caption for the area."


def _refcoco_row(c: Ctx) -> dict[str, Any]:
    while True:  # the referred shape must be the only one with its name
        scene = random_scene(c.rng)
        names = [s.name for s in scene.shapes]
        unique = [s for s in scene.shapes if names.count(s.name) == 1]
        if unique:
            break
    s = c.rng.choice(unique)
    return {
        "question_id": str(c.uid),
        "image": c.image(scene, f"COCO_train2014_{c.uid:012d}.jpg"),
        "question": REFCOCO_PROMPT,
        "answer": [s.name, f"the {s.name}"] + (
            [f"{s.kind} on the {s.side}"]
            if sum((o.kind, o.side) == (s.kind, s.side) for o in scene.shapes) == 1 else []
        ),
        "segmentation": s.polygon(),
        "bbox": [float(v) for v in s.box],
        "iscrowd": 0,
        "file_name": f"COCO_train2014_{c.uid:012d}_{c.index}.jpg",
    }


def _okvqa_row(c: Ctx) -> dict[str, Any]:
    scene = random_scene(c.rng)
    question, _, _, answer, wrong = _question(c.rng, scene)
    answers = ten_answers(c.rng, answer, wrong)
    return {
        "question_id": str(c.uid * 10 + 5),
        "image": c.image(scene, f"COCO_val2014_{c.uid:012d}.jpg"),
        "question": question,
        "answers": answers,
        "question_type": c.rng.choice(["one", "two", "eight", "other"]),
        "answer_type": "other",
    }


WORDS = ("STOP", "EXIT", "OPEN", "CAFE", "SALE", "BUS", "TAXI", "HOTEL")


def _textvqa_row(c: Ctx) -> dict[str, Any]:
    word = c.rng.choice(WORDS)
    scene = random_scene(c.rng, text=word, cells=[c.rng.randrange(2)])
    question = "what word is written in the image?"
    image_id = hashlib.sha256(f"{c.uid}".encode()).hexdigest()[:16]
    return {
        "image_id": image_id,
        "question_id": c.uid,
        "question": question,
        "question_tokens": question.rstrip("?").split(),
        "image": c.image(scene, f"{image_id}.jpg"),
        "image_width": scene.width,
        "image_height": scene.height,
        "flickr_original_url": f"https://farm1.staticflickr.com/{c.uid}/{image_id}_o.jpg",
        "flickr_300k_url": f"https://c1.staticflickr.com/1/{c.uid}/{image_id}_z.jpg",
        "answers": [] if c.split == "test" else ten_answers(c.rng, word.lower(), ["sign", "unanswerable"]),
        "image_classes": ["Street sign"],
        "set_name": {"validation": "val"}.get(c.split, c.split),
        "ocr_tokens": [word, c.rng.choice(WORDS)],
    }


def _coco2017_row(c: Ctx) -> dict[str, Any]:
    scene = random_scene(c.rng)
    name = f"{c.uid:012d}.jpg"
    return {
        "question_id": name,
        "image": c.image(scene, name),
        "question": "Provide a one-sentence caption for the provided image.",
        "answer": _captions(c.rng, scene),
        "id": c.uid,
        "license": c.rng.randint(1, 8),
        "file_name": name,
        "coco_url": f"http://images.cocodataset.org/val2017/{name}",
        "height": scene.height,
        "width": scene.width,
        "date_captured": f"2013-11-{c.rng.randint(10, 28)} 1{c.rng.randint(0, 9)}:0{c.rng.randint(0, 9)}:00",
    }


def _karpathy_row(c: Ctx) -> dict[str, Any]:
    scene = random_scene(c.rng)
    filename = f"COCO_val2014_{c.uid:012d}.jpg"
    return {
        "filepath": "val2014",
        "sentids": [c.uid * 5 + k for k in range(5)],
        "filename": filename,
        "imgid": c.uid % 100000,
        "split": {"validation": "val"}.get(c.split, c.split),
        "sentences": _captions(c.rng, scene),
        "cocoid": c.uid,
        "url": f"http://images.cocodataset.org/val2014/{filename}",
        "image": c.image(scene, filename, "JPEG"),  # written as a file, see FixtureSpec.image_file
    }


def _mmvp_row(c: Ctx) -> dict[str, Any]:
    """Rows come in pairs (0,1), (2,3), ...: the same question, images with opposite answers."""
    pair = random.Random(c.uid - 7 * (c.index % 2))  # seeded by the pair's first row
    kind = pair.choice(KINDS)
    first = c.index % 2 == 0
    scene = random_scene(c.rng, cells=[0 if first else 1], kinds=[kind])
    return {
        "Index": c.index + 1,
        "Question": f"Is the {kind} on the left or on the right of the image?",
        "Options": "(a) Left (b) Right",
        "Correct Answer": "(a)" if first else "(b)",
        "image": c.image(scene, f"{c.index + 1}.jpg", "JPEG"),
    }


# --- specs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixtureSpec:
    """One hub dataset: splits, features (column order = the card's), row builder, file format.

    ``image_file``: for datasets whose images are files, not a column, the path (relative to the
    dataset folder) each row's image is written to; the row's "image" cell is then dropped.
    ``csv_file``: write the table as this CSV file instead of parquet (the split is a label).
    """

    hub_id: str
    splits: tuple[str, ...]
    features: Features
    row: Callable[[Ctx], dict[str, Any]]
    image_file: Callable[[dict[str, Any]], str] | None = None
    csv_file: str | None = None


_VQA_ANSWER = {"answer": STR, "answer_confidence": STR, "answer_id": I64}

SPECS: dict[str, FixtureSpec] = {
    s.hub_id: s
    for s in [
        FixtureSpec("lmms-lab/VQAv2", ("validation", "testdev"), {
            "question_type": STR, "multiple_choice_answer": STR, "answers": [_VQA_ANSWER],
            "image_id": I64, "answer_type": STR, "question_id": I64, "question": STR,
            "image": Image(),
        }, _vqav2_row),
        FixtureSpec("lmms-lab/RefCOCO", ("val", "test", "testA", "testB"), {
            "question_id": STR, "image": Image(), "question": STR, "answer": Sequence(STR),
            "segmentation": Sequence(F32), "bbox": Sequence(F32), "iscrowd": I8, "file_name": STR,
        }, _refcoco_row),
        FixtureSpec("MMVP/MMVP", ("train",), {
            "Index": I64, "Question": STR, "Options": STR, "Correct Answer": STR,
        }, _mmvp_row, image_file=lambda r: f"MMVP Images/{r['Index']}.jpg", csv_file="Questions.csv"),
        FixtureSpec("yerevann/coco-karpathy", ("validation", "test"), {
            "filepath": STR, "sentids": Sequence(I64), "filename": STR, "imgid": I64, "split": STR,
            "sentences": Sequence(STR), "cocoid": I64, "url": STR,
        }, _karpathy_row, image_file=lambda r: f"{r['filepath']}/{r['filename']}"),
        FixtureSpec("lmms-lab/COCO-Caption2017", ("val",), {
            "question_id": STR, "image": Image(), "question": STR, "answer": Sequence(STR),
            "id": I64, "license": I8, "file_name": STR, "coco_url": STR, "height": I32,
            "width": I32, "date_captured": STR,
        }, _coco2017_row),
        FixtureSpec("lmms-lab/OK-VQA", ("val2014",), {
            "question_id": STR, "image": Image(), "question": STR, "answers": Sequence(STR),
            "question_type": STR, "answer_type": STR,
        }, _okvqa_row),
        FixtureSpec("lmms-lab/textvqa", ("validation", "test"), {
            "image_id": STR, "question_id": I32, "question": STR, "question_tokens": Sequence(STR),
            "image": Image(), "image_width": I32, "image_height": I32, "flickr_original_url": STR,
            "flickr_300k_url": STR, "answers": Sequence(STR), "image_classes": Sequence(STR),
            "set_name": STR, "ocr_tokens": Sequence(STR),
        }, _textvqa_row),
    ]
}
FIXTURES: tuple[str, ...] = tuple(SPECS)


def _corrupt(cell: dict[str, Any]) -> dict[str, Any]:
    data = cell["bytes"]
    return {**cell, "bytes": data[: max(8, len(data) // 3)]}


def write_fixture(
    name: str, root: Path, n: int = 20, seed: int = 0, corrupt: int = 0, layout: str = "hub"
) -> Path:
    """Write ``n`` rows per split of dataset ``name`` (a hub id in FIXTURES) under
    ``root/<org>/<name>`` (replacing that folder), the folder returned. Same arguments ->
    byte-identical files.

    ``corrupt``: rows per split whose image bytes are truncated. ``layout``: "hub" (parquet
    shards, two per split when n >= 8) or "save_to_disk" (a DatasetDict folder).
    """
    if name not in SPECS:
        raise ValueError(f"unknown fixture {name!r}; known: {', '.join(FIXTURES)}")
    spec = SPECS[name]
    if spec.csv_file and layout != "hub":
        raise ValueError(f"{name} is a CSV repository; only layout='hub' exists for it")
    if not 0 <= corrupt <= n:
        raise ValueError(f"corrupt={corrupt} must be between 0 and n={n}")
    folder = Path(root) / name
    if folder.exists():  # a rewrite must not leave shards of an earlier, different write behind
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for k, split in enumerate(spec.splits):
        rng = random.Random(f"{name}:{seed}:{split}")
        base_id = 100_000 + 1_000_000 * seed + 10_000 * k
        rows = [spec.row(Ctx(rng, i, split, base_id + 7 * i)) for i in range(n)]
        for i in rng.sample(range(n), corrupt):
            rows[i]["image"] = _corrupt(rows[i]["image"])
        if spec.image_file:
            for row in rows:
                path = folder / spec.image_file(row)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(row.pop("image")["bytes"])
        if spec.csv_file:
            write_csv(folder / spec.csv_file, rows)
        else:
            write_split(folder, split, rows, spec.features, layout, shards=2 if n >= 8 else 1)
    if layout == "save_to_disk":
        write_dataset_dict(folder, list(spec.splits))
    return folder
