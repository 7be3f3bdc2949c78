"""COCO Karpathy test, NoCaps val, Flickr30k: hub layouts, image sources, COCO metrics end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest_tasks import run_json, run_tasks, sample_lines, write_data

from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.metrics import captioning as caption_metrics
from evalkit.tasks import get_task
from evalkit.tasks.base import TaskContext
from evalkit.core.types import SampleError

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="COCO caption metrics need Java")

LIMIT = 6
# task -> (hub id, split, id column, captions column)
LAYOUT = {
    "coco_karpathy_test": ("yerevann/coco-karpathy", "test", "cocoid", "sentences"),
    "nocaps_val": ("lmms-lab/NoCaps", "validation", "image_id", "annotations_captions"),
    "flickr30k_test": ("lmms-lab/flickr30k", "test", "img_id", "caption"),
}
FAST_METRICS = ("bleu", "rouge_l", "cider")  # METEOR's JVM start costs ~15 s a task; it has its own tests


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("data"), [hub for hub, *_ in LAYOUT.values()])


@pytest.fixture(scope="module")
def finished(tiny_llava: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    real = caption_metrics.score_captions
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(caption_metrics, "score_captions",
                   lambda p, r, metrics=FAST_METRICS, **kw: real(p, r, FAST_METRICS, **kw))
        code, run_dir = run_tasks(tiny_llava, data, tmp_path_factory.mktemp("out"),
                                  "coco_karpathy,nocaps,flickr30k", "--limit", str(LIMIT), "--max-error-rate", "0.5")
    assert code == 0
    return run_dir


def table(data: Path, hub_id: str, split: str) -> list[dict]:
    files = sorted((data / hub_id / "data").glob(f"{split}-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def load(name: str, data: Path, limit: int | None = None) -> list:
    return list(get_task(name).load(TaskContext(data_dir=data, limit=limit)).samples)


@pytest.mark.parametrize("task", LAYOUT)
def test_run_scores_the_corpus_of_good_samples(finished: Path, data: Path, task: str) -> None:
    hub_id, split, id_col, captions_col = LAYOUT[task]
    rows = {str(r[id_col]): r for r in table(data, hub_id, split)}
    result = run_json(finished)["tasks"][task]
    lines = sample_lines(finished, task)
    assert result["n"] == len(lines) == LIMIT and result["primary_metric"] == "cider"
    bad = set()
    for s in load(task, data, LIMIT):
        try:
            s.images[0].load()
        except SampleError:
            bad.add(s.id)
    assert {s["id"] for s in lines if s["error"]} == bad and result["errors_by_category"] == {"image_decode": len(bad)}
    for s in lines:
        assert s["target"] == rows[s["id"]][captions_col]  # every reference caption, in order
    ok = [s for s in lines if s["error"] is None]
    expected = caption_metrics.score_captions({s["id"]: s["parsed"] for s in ok},
                                              {s["id"]: s["target"] for s in ok}, FAST_METRICS)
    metrics = result["metrics"]
    assert metrics["cider"]["n"] == len(ok) == LIMIT - len(bad)
    assert metrics["cider"]["value"] == pytest.approx(100 * expected.scores["CIDEr"], abs=1e-3)
    assert metrics["bleu4"]["value"] == pytest.approx(100 * expected.scores["Bleu_4"], abs=1e-3)
    assert metrics["rouge_l"]["value"] == pytest.approx(100 * expected.scores["ROUGE_L"], abs=1e-3)
    for name in ("bleu1", "bleu4", "rouge_l", "cider"):  # bootstrap stderr over the images (was null)
        assert metrics[name]["stderr"] is not None and metrics[name]["stderr"] >= 0, name
    assert any("CIDEr" in note for note in result["notes"])  # --limit changes CIDEr's idf: said so


def test_prompt_is_llava_short_caption(finished: Path) -> None:
    for s in sample_lines(finished, "nocaps_val"):
        if s["error"] is None:
            assert "Provide a one-sentence caption for the provided image." in s["prompt"]


def test_karpathy_reads_images_from_the_coco_folder(data: Path) -> None:
    folder = data / "yerevann" / "coco-karpathy"
    rows = table(data, "yerevann/coco-karpathy", "test")
    samples = load("coco_karpathy_test", data)
    assert [s.id for s in samples] == [str(r["cocoid"]) for r in rows]
    for s, r in zip(samples, rows):
        assert Path(s.images[0].path) == folder / r["filepath"] / r["filename"]
        assert s.metadata == {"image_id": r["cocoid"]}


def test_karpathy_without_images_fails_at_open_with_the_fix(data: Path, tmp_path: Path, tiny_llava: Path) -> None:
    shutil.copytree(data / "yerevann", tmp_path / "yerevann")
    shutil.rmtree(tmp_path / "yerevann" / "coco-karpathy" / "val2014")
    with pytest.raises(UsageError, match=r"holds no images.*val2014/COCO_val2014_"):
        get_task("coco_karpathy_test").load(TaskContext(data_dir=tmp_path))
    code = main(["run", "--model", str(tiny_llava), "--tasks", "coco_karpathy", "--data-dir", str(tmp_path),
                 "--output", str(tmp_path / "out"), "--no-progress"])
    assert code == 2


def test_karpathy_copy_with_an_image_column_uses_it(data: Path, tmp_path: Path) -> None:
    src = data / "yerevann" / "coco-karpathy"
    dest = tmp_path / "yerevann" / "coco-karpathy" / "data"
    dest.mkdir(parents=True)
    rows = table(data, "yerevann/coco-karpathy", "test")[:3]
    for r in rows:
        r["image"] = {"bytes": (src / r["filepath"] / r["filename"]).read_bytes(), "path": r["filename"]}
    pq.write_table(pa.Table.from_pylist(rows), dest / "test-00000-of-00001.parquet")
    samples = load("coco_karpathy_test", tmp_path)
    assert [s.images[0].data for s in samples] == [r["image"]["bytes"] for r in rows]
    assert all(s.images[0].path is None for s in samples)


def test_a_row_without_captions_is_a_data_error(tmp_path: Path) -> None:
    from evalkit.testing.fixture_specs_tasks import write_fixture

    folder = write_fixture("lmms-lab/flickr30k", tmp_path, n=3)
    path = folder / "data" / "test-00000-of-00001.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[1]["caption"] = []
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
    samples = load("flickr30k_test", tmp_path)
    assert [s.load_error is not None for s in samples] == [False, True, False]
    assert samples[1].load_error.category == "data"
