"""Synthetic hub fixtures: exact schemas, both layouts, determinism, images that match their labels."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalkit.core.data import DatasetSpec, open_dataset
from evalkit.testing.hub_fixtures import FIXTURES, SPECS, arrow_schema, write_fixture
from evalkit.core.types import SampleError

BACKGROUND = (250, 250, 245)
PARQUET = [name for name in FIXTURES if SPECS[name].csv_file is None]
CASES = [(name, "hub") for name in FIXTURES] + [(name, "save_to_disk") for name in PARQUET]


def _spec(name: str, split: str | None = None) -> DatasetSpec:
    fx = SPECS[name]
    return DatasetSpec(name, split or fx.splits[0], data_files=fx.csv_file)


def _schema(path: Path) -> pa.Schema:
    if path.suffix == ".parquet":
        return pq.read_schema(path)
    return pa.ipc.open_stream(pa.memory_map(str(path))).schema


def _images(source, rows):
    """(ImageRef, row) for each row, wherever the dataset keeps its images."""
    name = source.spec.hub_id
    for row in rows:
        if name == "MMVP/MMVP":
            yield source.image_ref(f"MMVP Images/{row['Index']}.jpg"), row
        elif name == "yerevann/coco-karpathy":
            yield source.image_ref(f"{row['filepath']}/{row['filename']}"), row
        else:
            yield source.image_ref(row["image"]), row


@pytest.mark.parametrize("name,layout", CASES)
def test_round_trip_through_the_real_loader(tmp_path: Path, name: str, layout: str) -> None:
    fx = SPECS[name]
    write_fixture(name, tmp_path, n=9, seed=1, corrupt=2, layout=layout)
    for split in fx.splits:
        source = open_dataset(_spec(name, split), data_dir=tmp_path)
        assert len(source) == 9
        rows = list(source.rows())
        assert len(rows) == 9 and list(rows[0]) == list(fx.features)
        if fx.csv_file is None:  # column names, order and arrow types exactly as the card's
            expected = arrow_schema(fx.features)
            for path in source.files:
                got = _schema(path)
                assert got.equals(expected, check_metadata=False), f"{path}: {got} != {expected}"
                features = json.loads(got.metadata[b"huggingface"])["info"]["features"]
                if "image" in fx.features:
                    assert features["image"] == {"_type": "Image"}
        decoded, failed = 0, 0
        for ref, _ in _images(source, rows):
            try:
                img = ref.load()
            except SampleError as exc:
                assert exc.category == "image_decode"
                failed += 1
                continue
            decoded += 1
            assert 32 <= img.width <= 96 and 32 <= img.height <= 96
        assert (decoded, failed) == (7, 2)


@pytest.mark.parametrize("layout", ["hub", "save_to_disk"])
def test_same_seed_same_bytes_other_seed_other_hash(tmp_path: Path, layout: str) -> None:
    name, spec = "lmms-lab/VQAv2", _spec("lmms-lab/VQAv2")
    hashes = []
    for i, seed in enumerate((3, 3, 4)):
        write_fixture(name, tmp_path / str(i), n=10, seed=seed, layout=layout)
        hashes.append(open_dataset(spec, data_dir=tmp_path / str(i)).content_hash())
    assert hashes[0] == hashes[1] != hashes[2]
    files = sorted(p.relative_to(tmp_path / "0") for p in (tmp_path / "0").rglob("*") if p.is_file())
    assert all((tmp_path / "0" / f).read_bytes() == (tmp_path / "1" / f).read_bytes() for f in files)


def test_image_sizes_and_formats_vary(tmp_path: Path) -> None:
    write_fixture("lmms-lab/VQAv2", tmp_path, n=30)
    source = open_dataset(_spec("lmms-lab/VQAv2"), data_dir=tmp_path)
    sizes, formats = set(), set()
    for ref, _ in _images(source, source.rows()):
        img = ref.load()
        sizes.add(img.size)
        formats.add(ref.data[:4])
    assert any(w != h for w, h in sizes) and len(sizes) > 10
    assert formats == {b"\x89PNG", b"\xff\xd8\xff\xe0"}


def test_vqav2_answers_carry_the_edge_cases_vqa_accuracy_must_handle(tmp_path: Path) -> None:
    write_fixture("lmms-lab/VQAv2", tmp_path, n=40)
    rows = list(open_dataset(_spec("lmms-lab/VQAv2"), data_dir=tmp_path).rows())
    variants = set()
    for row in rows:
        answers = row["answers"]
        assert [a["answer_id"] for a in answers] == list(range(1, 11))
        assert {a["answer_confidence"] for a in answers} <= {"yes", "maybe", "no"}
        assert row["answer_type"] in ("yes/no", "number", "other")
        assert row["question_id"] // 1000 == row["image_id"]
        mc = row["multiple_choice_answer"]
        if row["answer_type"] == "number":
            assert mc.isdigit() and row["question"].startswith("How many")
        for a in (x["answer"] for x in answers):
            if a != mc and a.strip(" .").lower() == mc:
                variants.add("case/punct/space")
            if a.lower() in ("one", "two", "three", "four"):
                variants.add("number word")
            if a in (f"a {mc}", f"the {mc}"):
                variants.add("article")
    assert variants == {"case/punct/space", "number word", "article"}
    hidden = list(open_dataset(_spec("lmms-lab/VQAv2", "testdev"), data_dir=tmp_path).rows())
    assert all(r["answers"] is None and r["multiple_choice_answer"] is None for r in hidden)
    assert all(isinstance(r["question"], str) and r["image"]["bytes"] for r in hidden)


def _is_shape(pixel: tuple[int, int, int]) -> bool:
    return sum(abs(a - b) for a, b in zip(pixel, BACKGROUND)) > 90


def test_refcoco_boxes_are_pixel_xywh_on_the_drawn_shape(tmp_path: Path) -> None:
    write_fixture("lmms-lab/RefCOCO", tmp_path, n=20)
    source = open_dataset(_spec("lmms-lab/RefCOCO", "testA"), data_dir=tmp_path)
    for ref, row in _images(source, source.rows()):
        img = ref.load()
        x, y, w, h = row["bbox"]
        assert 0 <= x and 0 <= y and x + w <= img.width and y + h <= img.height
        assert _is_shape(img.getpixel((int(x + w / 2), int(y + h * 0.6))))
        x2, y2 = int(x + w) + 2, int(y + h) + 2  # 2 px outside the box: background only
        outside = [(x2, j) for j in range(int(y), int(y + h)) if x2 < img.width]
        outside += [(i, y2) for i in range(int(x), int(x + w)) if y2 < img.height]
        outside += [(int(x) - 2, j) for j in range(int(y), int(y + h)) if x >= 2]
        assert outside and not any(_is_shape(img.getpixel(p)) for p in outside)
        assert row["answer"][0] in row["answer"][1] and row["iscrowd"] == 0
        assert len(row["segmentation"]) % 2 == 0 and row["question"].startswith("Please carefully")


def test_mmvp_is_a_csv_with_image_files_in_pairs(tmp_path: Path) -> None:
    folder = write_fixture("MMVP/MMVP", tmp_path, n=6)
    with (folder / "Questions.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert header == ["Index", "Question", "Options", "Correct Answer"]
    source = open_dataset(_spec("MMVP/MMVP"), data_dir=tmp_path)
    rows = list(source.rows())
    assert [r["Index"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    for first, second in zip(rows[::2], rows[1::2]):
        assert first["Question"] == second["Question"]
        assert (first["Correct Answer"], second["Correct Answer"]) == ("(a)", "(b)")
        assert re.fullmatch(r"\(a\) \w+ \(b\) \w+", first["Options"])
    for ref, row in _images(source, rows):  # (a) Left: the shape's pixels lie in the left half
        img = ref.load()
        xs = [x for x in range(img.width) for y in range(img.height) if _is_shape(img.getpixel((x, y)))]
        assert (sum(xs) / len(xs) < img.width / 2) == (row["Correct Answer"] == "(a)")


def test_karpathy_keeps_the_card_schema_and_writes_images_beside_it(tmp_path: Path) -> None:
    folder = write_fixture("yerevann/coco-karpathy", tmp_path, n=4)
    source = open_dataset(_spec("yerevann/coco-karpathy", "test"), data_dir=tmp_path)
    assert "image" not in source.columns
    for ref, row in _images(source, source.rows()):
        assert len(row["sentences"]) == 5 and len(row["sentids"]) == 5 and row["split"] == "test"
        assert row["url"].endswith(row["filename"]) and (folder / row["filepath"] / row["filename"]).is_file()
        assert ref.load().mode == "RGB"


def test_write_fixture_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fixture"):
        write_fixture("lmms-lab/VQAv3", tmp_path)
    with pytest.raises(ValueError, match="only layout='hub'"):
        write_fixture("MMVP/MMVP", tmp_path, layout="save_to_disk")
    with pytest.raises(ValueError, match="corrupt=5"):
        write_fixture("lmms-lab/VQAv2", tmp_path, n=4, corrupt=5)
