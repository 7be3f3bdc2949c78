"""RefCOCO / RefCOCO+ / RefCOCOg: one sample per expression, xywh -> xyxy targets, pixel-space scoring."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest_tasks import mean_x100, run_json, run_tasks, sample_lines, write_data
from PIL import Image

from evalkit.core.boxes import decode_box, iou
from evalkit.core.results import SampleRecord
from evalkit.tasks import expand_tasks, get_task
from evalkit.tasks.base import ParseContext, TaskContext
from evalkit.tasks.refcoco import image_size, xywh_to_xyxy
from evalkit.core.types import SampleError

HUB = {"refcoco": "lmms-lab/RefCOCO", "refcoco+": "lmms-lab/RefCOCOplus", "refcocog": "lmms-lab/RefCOCOg"}
LIMIT = 5


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("data"), list(HUB.values()), n=8, corrupt=1)


@pytest.fixture(scope="module")
def finished(tiny_llava: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, run_dir = run_tasks(tiny_llava, data, tmp_path_factory.mktemp("out"), "refcoco_val,refcoco+_testA",
                              "--limit", str(LIMIT), "--max-error-rate", "1")
    assert code == 0
    return run_dir


def rows(data: Path, hub_id: str, split: str) -> list[dict]:
    files = sorted((data / hub_id / "data").glob(f"{split}-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def load(name: str, data: Path, limit: int | None = None) -> tuple[int, int | None, list]:
    task_data = get_task(name).load(TaskContext(data_dir=data, limit=limit))
    return task_data.n, task_data.dataset.n, list(task_data.samples)


# --- golden: boxes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("xywh", "xyxy"), [
    ([10.0, 5.0, 40.0, 20.0], [10.0, 5.0, 50.0, 25.0]),
    ([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0]),
    ([103.93, 299.99, 134.22, 77.1], [103.93, 299.99, 238.15, 377.09]),
    ([5.5, 7.25, 0.0, 0.0], [5.5, 7.25, 5.5, 7.25]),
])
def test_xywh_to_xyxy(xywh: list[float], xyxy: list[float]) -> None:
    assert xywh_to_xyxy(xywh) == pytest.approx(xyxy)


@pytest.mark.parametrize("bad", [[1, 2, 3], [1, 2, -3, 4], "1,2,3,4", None])
def test_xywh_to_xyxy_rejects_non_boxes(bad: object) -> None:
    with pytest.raises(ValueError):
        xywh_to_xyxy(bad)


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(buf, format="JPEG")
    return buf.getvalue()


def grounding_record(task, output: str, box_format: str, width: int, height: int, bbox_xywh: list[float]):
    meta = {"width": width, "height": height}
    rec = SampleRecord(id="1_0", task=task.name, prompt="p", output=output, target=xywh_to_xyxy(bbox_xywh),
                       metadata=meta)
    rec.parsed = task.parse(output, meta, ParseContext(box_format=box_format))
    rec.scores = task.score(rec)
    return rec


def test_exact_box_in_each_frame_scores_iou_1() -> None:
    task = get_task("refcoco_val")
    # 100x50 image, object at x 10..50, y 5..25.
    exact = grounding_record(task, "[0.1, 0.1, 0.5, 0.5]", "norm_xyxy", 100, 50, [10, 5, 40, 20])
    assert exact.parsed == [10.0, 5.0, 50.0, 25.0] and exact.scores == {"acc@0.5": 1.0, "iou": 1.0, "unparseable": 0.0}
    # LLaVA-1.5's padded-square frame: side 100, the image pasted 25 px down.
    square = grounding_record(task, "[0.1, 0.3, 0.5, 0.5]", "norm_xyxy_square", 100, 50, [10, 5, 40, 20])
    assert square.parsed == [10.0, 5.0, 50.0, 25.0] and square.scores["iou"] == pytest.approx(1.0)


def test_iou_threshold_and_unparseable() -> None:
    task = get_task("refcoco_val")
    # prediction x 10..50, y 5..15: IoU = 400 / 800 = 0.5 exactly -> counts (>= 0.5)
    half = grounding_record(task, "[0.1, 0.1, 0.5, 0.3]", "norm_xyxy", 100, 50, [10, 5, 40, 20])
    assert half.scores["iou"] == pytest.approx(0.5) and half.scores["acc@0.5"] == 1.0
    below = grounding_record(task, "[0.1, 0.1, 0.49, 0.3]", "norm_xyxy", 100, 50, [10, 5, 40, 20])
    assert below.scores["iou"] < 0.5 and below.scores["acc@0.5"] == 0.0
    none = grounding_record(task, "the man on the left", "norm_xyxy", 100, 50, [10, 5, 40, 20])
    assert none.parsed is None and none.scores == {"acc@0.5": 0.0, "iou": 0.0, "unparseable": 1.0}
    metrics = task.aggregate([half, below, none])
    assert metrics["acc@0.5"].value == pytest.approx(100 / 3, abs=1e-3)
    assert metrics["unparseable"].value == pytest.approx(100 / 3, abs=1e-3) and metrics["unparseable"].n == 3


def test_pixel_iou_equals_lmms_eval_normalized_iou() -> None:
    # lmms-eval divides both boxes by (w, h) before IoU; the per-axis scaling leaves IoU unchanged.
    w, h = 640, 427
    gt, pred = xywh_to_xyxy([100.5, 50.25, 200.0, 120.0]), [120.0, 40.0, 330.0, 150.0]
    norm = lambda b: [b[0] / w, b[1] / h, b[2] / w, b[3] / h]  # noqa: E731
    assert iou(pred, gt) == pytest.approx(iou(norm(pred), norm(gt)), rel=1e-12)
    assert decode_box("[0.1875, 0.0937, 0.5156, 0.3513]", "norm_xyxy", w, h) is not None


def test_image_size_reads_the_header_only() -> None:
    data = _jpeg(37, 53)
    assert image_size({"bytes": data, "path": None}) == (37, 53)
    truncated = data[: len(data) // 2]  # header intact, pixels cut: the size is known, decoding fails later
    assert image_size({"bytes": truncated, "path": None}) == (37, 53)
    with pytest.raises(SampleError) as err:
        image_size({"bytes": b"not an image", "path": None})
    assert err.value.category == "image_decode"


# --- loading: one sample per referring expression ---------------------------------------------------


@pytest.mark.parametrize(("name", "split"), [("refcoco_testB", "testB"), ("refcoco+_val", "val"),
                                             ("refcocog_test", "test")])
def test_every_expression_is_a_sample(data: Path, name: str, split: str) -> None:
    table = rows(data, HUB[name.split("_")[0]], split)
    n, dataset_n, samples = load(name, data)
    expected = [(f"{r['question_id']}_{k}", e, r) for r in table for k, e in enumerate(r["answer"])]
    assert n == dataset_n == len(samples) == len(expected) > len(table)
    for s, (sid, expr, row) in zip(samples, expected):
        assert s.id == sid and s.metadata["expression"] == expr
        assert s.question == ("Please provide the bounding box coordinate of the region this sentence describes: "
                              f"{expr}.")
        assert s.target == xywh_to_xyxy(row["bbox"])
        try:
            with Image.open(io.BytesIO(row["image"]["bytes"])) as img:
                size = img.size
        except OSError:  # a corrupt image whose header is cut too: the sample carries the error
            assert s.load_error is not None and s.load_error.category == "image_decode"
            continue
        assert s.load_error is None and (s.metadata["width"], s.metadata["height"]) == size


def test_limit_counts_expressions(data: Path) -> None:
    n, dataset_n, samples = load("refcoco_val", data, limit=4)
    assert n == len(samples) == 4 and dataset_n > 4


def test_repeated_question_ids_stay_distinct(tmp_path: Path) -> None:
    from evalkit.testing.fixture_specs_tasks import write_fixture

    folder = write_fixture("lmms-lab/RefCOCO", tmp_path, n=3)
    path = folder / "data" / "val-00000-of-00001.parquet"
    table = pq.read_table(path).to_pylist()
    table[2]["question_id"] = table[0]["question_id"]
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(path)), path)
    _, _, samples = load("refcoco_val", tmp_path)
    ids = [s.id for s in samples]
    assert len(ids) == len(set(ids)) and any(i.endswith("#row2") for i in ids)


def test_groups_and_names() -> None:
    assert expand_tasks("refcoco") == ["refcoco_val", "refcoco_testA", "refcoco_testB"]
    assert expand_tasks("refcoco+,refcocog") == ["refcoco+_val", "refcoco+_testA", "refcoco+_testB",
                                                 "refcocog_val", "refcocog_test"]
    assert len(expand_tasks("grounding")) == 8
    assert get_task("refcoco+_testA").dataset.hub_id == "lmms-lab/RefCOCOplus"


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "hub", "split"), [("refcoco_val", "lmms-lab/RefCOCO", "val"),
                                                    ("refcoco+_testA", "lmms-lab/RefCOCOplus", "testA")])
def test_run_end_to_end(finished: Path, task: str, hub: str, split: str) -> None:
    result = run_json(finished)["tasks"][task]
    assert result["primary_metric"] == "acc@0.5" and result["dataset"]["id"] == hub
    lines = sample_lines(finished, task)
    assert result["n"] == len(lines) == LIMIT
    ok = [s for s in lines if s["error"] is None]
    assert all(s["error_category"] == "image_decode" for s in lines if s["error"])
    for s in ok:  # the stored scores are what the box in the output gives (LLaVA-1.5: padded-square frame)
        m = s["metadata"]
        box = decode_box(s["output"], "norm_xyxy_square", m["width"], m["height"])
        assert s["parsed"] == (None if box is None else [round(v, 3) for v in box])
        value = 0.0 if box is None else iou(s["parsed"], s["target"])
        assert s["scores"]["iou"] == pytest.approx(value) and s["scores"]["unparseable"] == float(box is None)
    for key in ("acc@0.5", "iou", "unparseable"):
        assert result["metrics"][key]["n"] == len(ok)
        assert result["metrics"][key]["value"] == pytest.approx(mean_x100([s["scores"][key] for s in ok]), abs=1e-3)


def test_score_reproduces_the_stored_metrics(finished: Path) -> None:
    from evalkit.cli import main

    assert main(["score", str(finished), "--check"]) == 0
