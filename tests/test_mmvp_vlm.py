"""MMVP-VLM: scoring on hand-computed logit matrices, the hub layout, and CLIP / SigLIP end to end.

The definition checked is that of the authors' script (tsb0601/MMVP, scripts/evaluate_vlm.py): text "a photo of "
+ statement; per statement a softmax over the pair's two images, the first image picked iff its probability is
above 0.5; a pair counts only if both statements pick their own image; pair accuracy per visual pattern.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
from conftest_tasks import run_json, sample_lines, write_data

from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.core.results import SampleRecord
from evalkit.testing.hub_fixtures import random_scene, write_csv
from evalkit.tasks import get_task
from evalkit.tasks.base import ParseContext, TaskContext
from evalkit.tasks.mmvp_vlm import pattern_key

TASK = get_task("mmvp_vlm")


def record(logits: list[list[float]], pattern: str = "orientation", qid: int = 1,
           error: str | None = None) -> SampleRecord:
    """A stored record as the runner writes it: raw logits in ``output``, then parsed and scored."""
    rec = SampleRecord(id=f"{qid}-{qid + 1}", task="mmvp_vlm", prompt="p", output=json.dumps(logits), target=[0, 1],
                       metadata={"pattern": pattern, "question_ids": [qid, qid + 1]})
    if error is not None:
        rec.output, rec.error, rec.error_category = None, error, "image_decode"
        return rec
    rec.parsed = TASK.parse(rec.output, rec.metadata, ParseContext())
    rec.scores = TASK.score(rec)
    return rec


def flat(matrix: list[list[float]]) -> list[float]:
    return [x for row in matrix for x in row]


# --- scoring: hand-computed matrices (rows: statements, columns: images) ------------------------------------


def test_probabilities_are_a_softmax_over_the_two_images_per_statement() -> None:
    parsed = record([[math.log(3.0), 0.0], [0.0, math.log(4.0)]]).parsed
    assert flat(parsed["probs"]) == pytest.approx([0.75, 0.25, 0.2, 0.8])
    assert parsed["picks"] == [0, 1]


@pytest.mark.parametrize(("logits", "pair", "statements"), [
    ([[2.0, 0.0], [0.0, 1.0]], 1.0, 1.0),  # each statement picks its own image
    ([[2.0, 0.0], [1.0, 0.0]], 0.0, 0.5),  # both pick image 1: only one statement right, the pair is wrong
    ([[0.0, 2.0], [1.0, 0.0]], 0.0, 0.0),  # swapped
    ([[0.0, 2.0], [0.0, 1.0]], 0.0, 0.5),
    # Softmax per statement (over images), not per image (over statements): image 1 scores statement 2 higher
    # (6 > 5), yet statement 1 prefers image 1 (5 > 4) and statement 2 image 2 (7 > 6): right.
    ([[5.0, 4.0], [6.0, 7.0]], 1.0, 1.0),
    # A tie is not "above 0.5": the statement picks image 2 (the script's rule).
    ([[1.0, 1.0], [0.0, 3.0]], 0.0, 0.5),
    ([[0.0, 3.0], [1.0, 1.0]], 0.0, 0.5),
])
def test_a_pair_is_right_only_if_both_statements_pick_their_image(logits: list[list[float]], pair: float,
                                                                   statements: float) -> None:
    assert record(logits).scores == {"pair_accuracy": pair, "statement_accuracy": statements}


def test_a_per_statement_offset_such_as_siglips_bias_changes_nothing() -> None:
    base = record([[0.3, -0.2], [-1.0, 0.4]]).parsed
    shifted = record([[0.3 - 10, -0.2 - 10], [-1.0 + 7, 0.4 + 7]]).parsed
    assert shifted["picks"] == base["picks"] and flat(shifted["probs"]) == pytest.approx(flat(base["probs"]))


def test_malformed_logits_are_a_parse_error() -> None:
    with pytest.raises(ValueError, match="2 x 2"):
        TASK.parse("[[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]]", {}, ParseContext())


def test_aggregation_per_pattern_and_overall() -> None:
    right, wrong = [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]
    records = [
        record(right, "orientation", 1), record(wrong, "orientation", 3),
        record(right, "color", 5), record(right, "color", 7), record(wrong, "color", 9),
        record(right, "color", 11, error="OSError: truncated"),  # counted as an error, in no metric
    ]
    m = TASK.aggregate(records)
    assert (m["pair_accuracy"].value, m["pair_accuracy"].n) == (60.0, 5)
    assert m["pair_accuracy"].stderr == pytest.approx(100 * math.sqrt(0.3) / math.sqrt(5), abs=1e-4)
    assert (m["pair_accuracy.orientation"].value, m["pair_accuracy.orientation"].n) == (50.0, 2)
    assert (m["pair_accuracy.color"].value, m["pair_accuracy.color"].n) == (pytest.approx(66.6667), 3)
    assert (m["statement_accuracy"].value, m["statement_accuracy"].n) == (80.0, 5)
    assert [k for k in m if k.startswith("pair_accuracy.")] == ["pair_accuracy.orientation", "pair_accuracy.color"]


def test_pattern_keys() -> None:
    assert [pattern_key(t) for t in ("Orientation", "Structural Character", "Camera Perspective", " Text ")] == [
        "orientation", "structural_character", "camera_perspective", "text"]


# --- the hub layout --------------------------------------------------------------------------------------


def load(data: Path, limit: int | None = None) -> list:
    return list(TASK.load(TaskContext(data_dir=data, limit=limit)).samples)


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("data"), ["MMVP/MMVP_VLM"], n=36, corrupt=1)


def test_layout_of_the_fixture_is_read_as_pairs(fixture_data: Path) -> None:
    folder = fixture_data / "MMVP" / "MMVP_VLM"
    samples = load(fixture_data)
    assert len(samples) == 18 and [s.id for s in samples[:3]] == ["1-2", "3-4", "5-6"]
    first = samples[0]
    rows = (folder / "Questions.csv").read_text().splitlines()
    assert rows[0] == "Question ID,Type,Statement" and rows[1].startswith("1,Orientation,")
    statement_1, statement_2 = (r.split(",", 2)[2] for r in rows[1:3])
    assert first.texts == ["a photo of " + statement_1, "a photo of " + statement_2]
    assert [Path(ref.path) for ref in first.images] == [folder / "MLLM_VLM Images" / "Orientation" / f"{i}.jpg"
                                                       for i in (1, 2)]
    assert first.target == [0, 1] and first.metadata["pattern"] == "orientation"
    assert first.metadata["pattern_name"] == "Orientation and Direction"
    assert [s.metadata["pattern"] for s in samples[-2:]] == ["camera_perspective"] * 2
    assert len(load(fixture_data, limit=4)) == 4


def test_the_fixture_is_deterministic(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        base = write_data(root, ["MMVP/MMVP_VLM"], n=8, corrupt=1) / "MMVP" / "MMVP_VLM"
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    first = files(tmp_path / "a")
    assert first == files(tmp_path / "b") and "MLLM_VLM Images/Presence/8.jpg" in first


def write_vlm(root: Path, rows: list[tuple[int, str, str]], folder: str = "MLLM_VLM Images") -> Path:
    base = root / "MMVP" / "MMVP_VLM"
    write_csv(base / "Questions.csv", [{"Question ID": q, "Type": t, "Statement": s} for q, t, s in rows])
    for q, t, _ in rows:
        (base / folder / t).mkdir(parents=True, exist_ok=True)
        (base / folder / t / f"{q}.jpg").write_bytes(random_scene(random.Random(q)).encode("JPEG"))
    return root


ROWS = [(1, "Orientation", "a dog facing left"), (2, "Orientation", "a dog facing right"),
        (3, "Color", "a red car"), (4, "Color", "a blue car")]


def test_the_readme_folder_name_and_a_bom_are_tolerated(tmp_path: Path) -> None:
    data = write_vlm(tmp_path, ROWS, folder="MMVP_VLM_Images")
    csv_path = data / "MMVP" / "MMVP_VLM" / "Questions.csv"
    csv_path.write_bytes("\ufeff".encode() + csv_path.read_bytes())
    samples = load(data)
    assert [s.id for s in samples] == ["1-2", "3-4"] and all(s.load_error is None for s in samples)
    assert "MMVP_VLM_Images/Color/3.jpg" in samples[1].images[0].path


@pytest.mark.parametrize("rows", [
    [ROWS[1], ROWS[2], ROWS[0], ROWS[3]],  # (2, 3): not an (odd, odd + 1) pair
    [ROWS[0], (2, "Color", "a dog facing right"), *ROWS[2:]],  # one pair, two Types
    [ROWS[0], (2, "Orientation", "  "), *ROWS[2:]],  # empty statement
])
def test_a_pair_that_is_not_one_is_a_bad_record(tmp_path: Path, rows: list[tuple[int, str, str]]) -> None:
    first, second = load(write_vlm(tmp_path, rows))
    assert first.load_error is not None and first.load_error.category == "bad_record"
    assert (second.load_error is None) == (rows[2:] == ROWS[2:])


def test_a_lone_last_row_is_counted_not_dropped(tmp_path: Path) -> None:
    samples = load(write_vlm(tmp_path, ROWS[:3]))
    assert len(samples) == 2 and samples[1].load_error is not None and samples[1].id == "3"


def test_missing_image_folder_is_a_usage_error(tmp_path: Path) -> None:
    data = write_vlm(tmp_path, ROWS)
    shutil.rmtree(data / "MMVP" / "MMVP_VLM" / "MLLM_VLM Images")
    with pytest.raises(UsageError, match="MLLM_VLM Images"):
        TASK.load(TaskContext(data_dir=data))


# --- CLIP and SigLIP end to end ----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["clip", "siglip"])
def encoder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit.testing.tiny_models import build

    return build(request.param, tmp_path_factory.mktemp(request.param))


def run(model: Path, data: Path, out: Path, *extra: str) -> tuple[int, Path]:
    code = main(["run", "--model", str(model), "--tasks", "mmvp_vlm", "--data-dir", str(data), "--output", str(out),
                 "--no-progress", "--max-error-rate", "0.5", *extra])
    return code, max(p for p in out.iterdir() if (p / "run.json").exists())


def test_family_is_detected_from_config(encoder: Path) -> None:
    from evalkit.runner.models import resolve_model

    assert resolve_model(str(encoder)).family == encoder.name.rstrip("0123456789")


def test_run_scores_the_same_at_batch_1_and_8(encoder: Path, fixture_data: Path, tmp_path: Path) -> None:
    results = {}
    for bs in ("1", "8"):
        code, run_dir = run(encoder, fixture_data, tmp_path / bs, "--batch-size", bs)
        assert code == 0
        results[bs] = (run_json(run_dir)["tasks"]["mmvp_vlm"], sample_lines(run_dir, "mmvp_vlm"), run_dir)
    (one, lines_1, run_dir), (eight, lines_8, _) = results["1"], results["8"]
    assert one["metrics"] == eight["metrics"]
    assert one["n"] == 18 and one["n_errors"] == 1 and one["errors_by_category"] == {"image_decode": 1}
    assert one["dataset"]["id"] == "MMVP/MMVP_VLM" and one["generation"] == {"batch_size": 1}
    by_id = {s["id"]: s for s in lines_8}
    for s in lines_1:
        if s["error"] is None:
            assert flat(s["parsed"]["probs"]) == pytest.approx(flat(by_id[s["id"]]["parsed"]["probs"]), abs=1e-5)
            assert s["parsed"]["picks"] == by_id[s["id"]]["parsed"]["picks"]
            assert s["prompt"] == "\n".join("a photo of " + t for t in s["metadata"]["statements"])
    ok = [s for s in lines_1 if s["error"] is None]
    assert one["metrics"]["pair_accuracy"]["n"] == len(ok) == 17
    assert one["metrics"]["pair_accuracy"]["value"] == pytest.approx(
        100 * sum(s["scores"]["pair_accuracy"] for s in ok) / len(ok), abs=1e-4)
    assert {f"pair_accuracy.{pattern_key(t)}" for t in ("Orientation", "Camera Perspective")} <= set(one["metrics"])
    assert main(["score", str(run_dir), "--check"]) == 0  # rescoring the stored logits agrees


def test_resume_completes_a_cut_run(encoder: Path, fixture_data: Path, tmp_path: Path) -> None:
    code, finished = run(encoder, fixture_data, tmp_path / "full", "--batch-size", "4")
    assert code == 0
    cut = tmp_path / "out" / finished.name
    shutil.copytree(finished, cut)
    jsonl = cut / "samples" / "mmvp_vlm.jsonl"
    jsonl.write_text("\n".join(jsonl.read_text().splitlines()[:7]) + "\n")
    rec = json.loads((cut / "run.json").read_text())
    rec["status"], rec["tasks"] = "interrupted", {}
    (cut / "run.json").write_text(json.dumps(rec))
    code, run_dir = run(encoder, fixture_data, tmp_path / "out", "--batch-size", "4", "--resume")
    assert code == 0 and run_dir == cut
    assert len(sample_lines(cut, "mmvp_vlm")) == 18
    assert run_json(cut)["tasks"]["mmvp_vlm"]["metrics"] == run_json(finished)["tasks"]["mmvp_vlm"]["metrics"]


def test_model_and_task_kinds_must_match(encoder: Path, fixture_data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", str(encoder), "--tasks", "mmvp", "--data-dir", str(fixture_data),
                 "--output", str(tmp_path), "--no-progress"])
    assert code == 2 and "image-text encoder" in capsys.readouterr().err
    llava = tmp_path / "llava"
    llava.mkdir()
    (llava / "config.json").write_text('{"model_type": "llava"}')
    code = main(["run", "--model", str(llava), "--tasks", "mmvp_vlm", "--data-dir", str(fixture_data),
                 "--output", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "clip, siglip" in err


def test_no_copy_of_the_dataset_is_one_line_exit_2(encoder: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", str(encoder), "--tasks", "mmvp_vlm", "--data-dir", str(tmp_path),
                 "--output", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "MMVP/MMVP_VLM" in err


def test_encoders_run_on_hf_only(encoder: Path, fixture_data: Path, tmp_path: Path) -> None:
    assert main(["run", "--model", str(encoder), "--tasks", "mmvp_vlm", "--data-dir", str(fixture_data),
                 "--output", str(tmp_path), "--backend", "vllm", "--no-progress"]) == 2


def test_list_models_shows_the_encoder_families(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["clip"]["kind"] == rows["siglip"]["kind"] == "encoder" and rows["llava"]["kind"] == "generative"
    assert rows["clip"]["checkpoint"] == "openai/clip-vit-large-patch14"
    assert rows["siglip"]["checkpoint"] == "google/siglip-so400m-patch14-384"
    assert main(["list", "tasks", "--json"]) == 0
    task = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["mmvp_vlm"]
    assert (task["kind"], task["primary_metric"]) == ("encoder", "pair_accuracy")
    assert task["dataset"] == "MMVP/MMVP_VLM:train"
