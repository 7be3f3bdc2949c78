"""OK-VQA, TextVQA and GQA: loading from the hub layouts, prompts, scoring, and `evalkit run` end to end."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest_tasks import mean_x100, run_json, run_tasks, sample_lines, write_data

from evalkit.metrics import vqa_accuracy
from evalkit.core.results import SampleRecord
from evalkit.testing import hub_fixtures
from evalkit.testing.fixture_specs_tasks import GQA_IMAGES, write_gqa
from evalkit.tasks import get_task
from evalkit.tasks.base import TaskContext
from evalkit.tasks.vqa import GQATask, ImageTable
from evalkit.core.types import SampleError

TASKS = ("okvqa_val", "textvqa_val", "gqa_testdev")
LIMIT = 8


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("data"), ["lmms-lab/OK-VQA", "lmms-lab/textvqa", "lmms-lab/GQA"])


@pytest.fixture(scope="module")
def finished(tiny_llava: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, run_dir = run_tasks(tiny_llava, data, tmp_path_factory.mktemp("out"), "okvqa,textvqa,gqa",
                              "--limit", str(LIMIT), "--max-error-rate", "0.5")
    assert code == 0
    return run_dir


def samples_of(name: str, data: Path, limit: int | None = None) -> list:
    return list(get_task(name).load(TaskContext(data_dir=data, limit=limit)).samples)


def undecodable(samples: list) -> set[str]:
    bad = set()
    for s in samples:
        try:
            s.images[0].load()
        except SampleError:
            bad.add(s.id)
    return bad


def rows(data: Path, hub_id: str, split: str, config: str = "data") -> list[dict]:
    files = sorted((data / hub_id / config).glob(f"{split}-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_run_records_every_sample_and_scores_them(finished: Path, data: Path, task: str) -> None:
    result = run_json(finished)["tasks"][task]
    lines = sample_lines(finished, task)
    assert result["n"] == len(lines) == LIMIT
    failed = {s["id"] for s in lines if s["error"] is not None}
    assert failed == undecodable(samples_of(task, data, LIMIT))  # exactly the corrupt images fail
    assert result["errors_by_category"] == ({"image_decode": len(failed)} if failed else {})
    primary = "exact_match" if task == "gqa_testdev" else "accuracy"
    assert result["primary_metric"] == primary
    scored = [s["scores"][primary] for s in lines if s["error"] is None]
    acc = result["metrics"][primary]
    assert acc["n"] == LIMIT - len(failed) == len(scored)
    assert acc["value"] == pytest.approx(mean_x100(scored), abs=1e-3)


def test_run_json_names_the_data(finished: Path) -> None:
    tasks = run_json(finished)["tasks"]
    okvqa = tasks["okvqa_val"]["dataset"]
    assert (okvqa["id"], okvqa["split"], okvqa["revision"]) == ("lmms-lab/OK-VQA", "val2014", None)  # a mirror: no sha
    assert tasks["textvqa_val"]["dataset"]["split"] == "validation"
    gqa = tasks["gqa_testdev"]["dataset"]
    assert (gqa["id"], gqa["split"], gqa["config"]) == ("lmms-lab/GQA", "testdev", "testdev_balanced_instructions")
    assert gqa["n"] == 12 and len(gqa["content_hash"]) == 16


def test_okvqa_answers_are_plain_strings_scored_with_vqa_accuracy(finished: Path, data: Path) -> None:
    by_id = {r["question_id"]: r for r in rows(data, "lmms-lab/OK-VQA", "val2014")}
    for s in sample_lines(finished, "okvqa_val"):
        row = by_id[s["id"]]
        assert s["target"] == row["answers"]
        if s["error"] is None:  # a failed sample has no prompt
            assert s["prompt"].endswith(
                f"{row['question']}\nAnswer the question using a single word or phrase. ASSISTANT:")
            assert s["scores"]["accuracy"] == vqa_accuracy(s["parsed"], row["answers"])


def test_textvqa_prompt_has_llava_ocr_line(finished: Path, data: Path) -> None:
    by_id = {str(r["question_id"]): r for r in rows(data, "lmms-lab/textvqa", "validation")}
    lines = [s for s in sample_lines(finished, "textvqa_val") if s["error"] is None]
    assert lines
    for s in lines:
        row = by_id[s["id"]]
        expected = (f"{row['question']}\nReference OCR token: {', '.join(row['ocr_tokens'])}\n"
                    "Answer the question using a single word or phrase.")
        assert expected in s["prompt"]
        assert s["target"] == row["answers"]


def test_textvqa_without_ocr_tokens_has_no_ocr_line() -> None:
    task = get_task("textvqa_val")
    row = {"question": "what is written?", "ocr_tokens": []}
    expected = "what is written?\nAnswer the question using a single word or phrase."
    assert task.prompt("what is written?", row) == expected


def test_gqa_scores_exact_match_and_breaks_down_by_structural_type(finished: Path, data: Path) -> None:
    by_id = {r["id"]: r for r in rows(data, "lmms-lab/GQA", "testdev", "testdev_balanced_instructions")}
    lines = sample_lines(finished, "gqa_testdev")
    for s in lines:
        assert s["target"] == by_id[s["id"]]["answer"]
        assert s["metadata"]["structural"] == by_id[s["id"]]["types"]["structural"]
    metrics = run_json(finished)["tasks"]["gqa_testdev"]["metrics"]
    for kind in {s["metadata"]["structural"] for s in lines if s["error"] is None}:
        group = [s["scores"]["exact_match"] for s in lines
                 if s["error"] is None and s["metadata"]["structural"] == kind]
        assert metrics[f"exact_match.{kind}"]["n"] == len(group)


# --- GQA: the image join --------------------------------------------------------------------------


def test_gqa_joins_images_by_id_not_position(data: Path) -> None:
    images = {r["id"]: r["image"]["bytes"] for r in rows(data, "lmms-lab/GQA", "testdev", GQA_IMAGES)}
    questions = rows(data, "lmms-lab/GQA", "testdev", "testdev_balanced_instructions")
    samples = samples_of("gqa_testdev", data)
    assert [s.id for s in samples] == [q["id"] for q in questions]
    positions = [list(images).index(q["imageId"]) for q in questions]
    assert positions != sorted(positions)  # the image table is not in question order
    for s, q in zip(samples, questions):
        assert s.images[0].data == images[q["imageId"]]
        assert s.metadata["image_id"] == q["imageId"]


def test_gqa_question_with_missing_image_is_a_bad_record(tmp_path: Path) -> None:
    folder = write_gqa(tmp_path, n=6)
    path = next((folder / "testdev_balanced_instructions").glob("*.parquet"))
    table = pq.read_table(path).to_pylist()
    table[2]["imageId"] = "n-not-there"
    pq.write_table(pq.read_table(path).from_pylist(table, schema=pq.read_schema(path)), path)
    samples = samples_of("gqa_testdev", tmp_path)
    assert len(samples) == 6
    assert samples[2].load_error is not None and samples[2].load_error.category == "bad_record"
    assert "n-not-there" in samples[2].load_error.message
    assert all(s.load_error is None for i, s in enumerate(samples) if i != 2)


def image_files(tmp_path: Path, n_questions: int) -> list[Path]:
    folder = write_gqa(tmp_path, n=n_questions)
    return sorted((folder / GQA_IMAGES).glob("*.parquet"))


def test_image_table_reads_only_ids_until_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_fixtures, "ROW_GROUP_SIZE", 2)  # several row groups per shard
    files = image_files(tmp_path, 30)
    expected = {r["id"]: r["image"]["bytes"] for f in files for r in pq.read_table(f).to_pylist()}
    table = ImageTable(files, cache_bytes=1)
    assert len(table) == len(expected) == 10 and table.chunk_reads == 0 and table.cached_bytes == 0
    biggest_chunk = 0
    for image_id, data in expected.items():
        assert table.get(image_id).data == data
        biggest_chunk = max(biggest_chunk, table.cached_bytes)
    # a 1-byte budget keeps only the chunk last read: memory stays at one row group
    assert table.cached_bytes <= biggest_chunk < sum(len(b) for b in expected.values()) / 2
    assert "missing" not in table
    with pytest.raises(KeyError):
        table.get("missing")


def test_image_table_reads_each_chunk_once_when_the_budget_allows(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_fixtures, "ROW_GROUP_SIZE", 3)
    files = image_files(tmp_path, 30)
    n_chunks = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    table = ImageTable(files)
    ids = [r["id"] for f in files for r in pq.read_table(f, columns=["id"]).to_pylist()]
    for image_id in ids + ids[::-1]:
        table.get(image_id)
    assert n_chunks > 2 and table.chunk_reads == n_chunks


def test_image_table_reads_save_to_disk_arrow(tmp_path: Path) -> None:
    from evalkit.testing.fixture_specs_tasks import _GQA_IMAGE_FEATURES

    rows_ = [{"id": f"n{i}", "image": {"bytes": bytes([i]) * (i + 1), "path": None}} for i in range(5)]
    [path] = hub_fixtures.write_split(tmp_path, "testdev", rows_, _GQA_IMAGE_FEATURES, layout="save_to_disk")
    table = ImageTable([path], cache_bytes=1)
    assert [table.get(f"n{i}").data for i in (4, 0, 2)] == [bytes([4]) * 5, b"\x00", bytes([2]) * 3]


# --- GQA scoring: GQA's eval.py after LLaVA's conversion; the VQA-normalized match as a secondary --


def gqa_record(parsed: str, target: str, structural: str = "query") -> SampleRecord:
    return SampleRecord(id="q", task="gqa_testdev", prompt="p", output=parsed, parsed=parsed, target=target,
                        metadata={"structural": structural})


@pytest.mark.parametrize(("parsed", "target", "exact", "vqa_normalized"), [
    ("yes", "yes", 1.0, 1.0),
    ("Yes.", "yes", 1.0, 1.0),  # case and the final period(s): rstrip('.').lower()
    ("Yes..", "yes", 1.0, 1.0),
    ("The left", "left", 0.0, 1.0),  # articles stay in GQA's protocol
    ("two", "2", 0.0, 1.0),  # number words stay
    ("yes!", "yes", 0.0, 1.0),  # other punctuation stays
    ("t-shirt", "t-shirt", 1.0, 1.0),
    (" no\n", "no", 1.0, 1.0),
    ("left side", "left", 0.0, 0.0),  # no partial credit
    ("", "no", 0.0, 0.0),
    ("yes", "no", 0.0, 0.0),
])
def test_gqa_exact_match(parsed: str, target: str, exact: float, vqa_normalized: float) -> None:
    assert get_task("gqa_testdev").score(gqa_record(parsed, target)) == {
        "exact_match": exact, "vqa_normalized_match": vqa_normalized}


def test_gqa_single_answer_is_not_vqa_leave_one_out() -> None:
    # With VQA accuracy one matching "annotator" would give 0.3; GQA gives full credit.
    task: GQATask = get_task("gqa_testdev")
    records = [gqa_record("red", "red", "query"), gqa_record("no", "yes", "verify"), gqa_record("yes", "yes", "verify")]
    for r in records:
        r.scores = task.score(r)
    metrics = task.aggregate(records)
    assert metrics["exact_match"].value == pytest.approx(200 / 3, abs=1e-3) and metrics["exact_match"].n == 3
    assert metrics["exact_match.query"].value == 100.0 and metrics["exact_match.verify"].value == 50.0
    assert metrics["vqa_normalized_match"].value == pytest.approx(200 / 3, abs=1e-3)


def test_score_reproduces_the_stored_metrics(finished: Path) -> None:
    from evalkit.cli import main

    assert main(["score", str(finished), "--check"]) == 0
