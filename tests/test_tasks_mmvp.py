"""MMVP: the CSV + image-folder layout, the published label corrections, and pair scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest_tasks import mean_x100, run_json, run_tasks, sample_lines, write_data

from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.core.results import SampleRecord
from evalkit.testing.hub_fixtures import random_scene, write_csv
from evalkit.tasks import get_task
from evalkit.tasks.base import ParseContext, TaskContext
from evalkit.tasks.mmvp import parse_answer, parse_options

TUSKS = "Does the elephant have long or short tusks?"
POSTURE = "Is the elderly person standing or sitting in the picture?"
# Rows around the two swapped pairs, as published (Index, Question, Options, Correct Answer).
PUBLISHED = [
    (97, "Are the butterfly's wings closer to being open or closed?", "(a) Open (b) Closed", "(a)"),
    (98, "Are the butterfly's wings closer to being open or closed?", "(a) Open (b) Closed", "(b)"),
    (99, TUSKS, "(a) Long (b) Short", "(a)"),
    (100, TUSKS, "(a) Long (b) Short", "(b)"),
    (279, POSTURE, "(a) Standing (b) Sitting", "(a)"),
    (280, POSTURE, "(a) Standing (b) Sitting", "(b)"),
    (281, "Are there any drinks on the table?", "(a) Yes (b) No", "(a)"),
    (282, "Are there any drinks on the table?", "(a) Yes (b) No", "(b)"),
]
# What the images show (the corrected labels): 99 short tusks, 100 long, 279 sitting, 280 standing.
TRUTH = {97: 0, 98: 1, 99: 1, 100: 0, 279: 1, 280: 0, 281: 0, 282: 1}


def write_mmvp(root: Path, published: list[tuple[int, str, str, str]] = PUBLISHED) -> Path:
    import random

    folder = root / "MMVP" / "MMVP"
    rng = random.Random(0)
    write_csv(folder / "Questions.csv", [
        {"Index": i, "Question": q, "Options": o, "Correct Answer": a} for i, q, o, a in published
    ])
    (folder / "MMVP Images").mkdir(parents=True)
    for i, *_ in published:
        (folder / "MMVP Images" / f"{i}.jpg").write_bytes(random_scene(rng).encode("JPEG"))
    return root


def load(name: str, data: Path, limit: int | None = None) -> list:
    return list(get_task(name).load(TaskContext(data_dir=data, limit=limit)).samples)


def scored(name: str, data: Path, outputs: dict[int, str]) -> list[SampleRecord]:
    task = get_task(name)
    records = []
    for s in load(name, data):
        rec = SampleRecord(id=s.id, task=name, prompt=s.question, output=outputs[int(s.id)], target=s.target,
                           metadata=s.metadata)
        if s.load_error is not None:  # as the runner does: recorded, never scored
            rec.error, rec.error_category = str(s.load_error), s.load_error.category
        else:
            rec.parsed = task.parse(rec.output, s.metadata, ParseContext())
            rec.scores = task.score(rec)
        records.append(rec)
    return records


# --- parsing the CSV cells ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "options"), [
    ("(a) Long (b) Short", ["Long", "Short"]),
    ("(a) Yes (b) No", ["Yes", "No"]),
    ("(a) The dog is facing left  (b) The dog is facing right", ["The dog is facing left", "The dog is facing right"]),
    ("(A) Open (B) Closed", ["Open", "Closed"]),
])
def test_parse_options(text: str, options: list[str]) -> None:
    assert parse_options(text) == options


@pytest.mark.parametrize("bad", ["Long or Short", "(a) Long", "(b) Long (a) Short", "(a)  (b) Short", "x (a) y (b) z"])
def test_parse_options_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_options(bad)


@pytest.mark.parametrize(("text", "index"), [("(a)", 0), ("(b)", 1), ("b", 1), (" (B) ", 1), ("(a) Long", 0)])
def test_parse_answer(text: str, index: int) -> None:
    assert parse_answer(text, 2) == index


@pytest.mark.parametrize("bad", ["(c)", "", "long"])
def test_parse_answer_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_answer(bad, 2)


# --- the corrections ----------------------------------------------------------------------------


def test_corrections_swap_the_two_known_pairs(tmp_path: Path) -> None:
    data = write_mmvp(tmp_path)
    corrected = {int(s.id): s for s in load("mmvp", data)}
    original = {int(s.id): s for s in load("mmvp_original", data)}
    assert {i: s.target for i, s in corrected.items()} == TRUTH
    assert {i: s.target for i, s in original.items()} == {i: "ab".index(a[1]) for i, _, _, a in PUBLISHED}
    assert {i for i, s in corrected.items() if s.metadata["corrected"]} == {99, 100, 279, 280}
    assert all(s.metadata["original_answer"] == original[i].target for i, s in corrected.items())
    assert corrected[99].metadata["pair_id"] == corrected[100].metadata["pair_id"] == 49
    assert corrected[279].metadata["pair_id"] == corrected[280].metadata["pair_id"] == 139
    suffix = "\nAnswer with the option's letter from the given choices directly."
    assert corrected[99].question == f"{TUSKS}\n(a) Long (b) Short{suffix}"


def test_pair_scoring_with_corrected_and_original_labels(tmp_path: Path) -> None:
    data = write_mmvp(tmp_path)
    seeing = {i: "(a)" if t == 0 else "(b)" for i, t in TRUTH.items()}  # a model that answers what it sees
    fixed = get_task("mmvp").aggregate(scored("mmvp", data, seeing))
    assert (fixed["accuracy"].value, fixed["pair_accuracy"].value, fixed["pair_accuracy"].n) == (100.0, 100.0, 4)
    published = get_task("mmvp_original").aggregate(scored("mmvp_original", data, seeing))
    # four questions (two whole pairs) are marked wrong by the swapped labels
    assert (published["accuracy"].value, published["pair_accuracy"].value) == (50.0, 50.0)
    # one wrong answer in a pair loses the whole pair
    one_wrong = {**seeing, 100: "(b)"}
    metrics = get_task("mmvp").aggregate(scored("mmvp", data, one_wrong))
    assert (metrics["accuracy"].value, metrics["pair_accuracy"].value) == (87.5, 75.0)


def test_corrections_apply_only_to_the_question_they_fix(tmp_path: Path) -> None:
    door = ("Is the door open?", "(a) Open (b) Closed")
    other = [(99, *door, "(a)"), (100, *door, "(b)")]
    targets = {int(s.id): s.target for s in load("mmvp", write_mmvp(tmp_path, other))}
    assert targets == {99: 0, 100: 1}


def test_corrections_are_idempotent_on_an_already_fixed_csv(tmp_path: Path) -> None:
    fixed_csv = [(99, TUSKS, "(a) Long (b) Short", "(b)"), (100, TUSKS, "(a) Long (b) Short", "(a)")]
    samples = load("mmvp", write_mmvp(tmp_path, fixed_csv))
    assert [(s.target, s.metadata["corrected"]) for s in samples] == [(1, False), (0, False)]


def test_a_malformed_row_keeps_its_pair_out_of_pair_accuracy(tmp_path: Path) -> None:
    rows = list(PUBLISHED)
    rows[0] = (97, rows[0][1], "Open or Closed", "(a)")
    data = write_mmvp(tmp_path, rows)
    samples = load("mmvp", data)
    assert samples[0].load_error is not None and samples[0].load_error.category == "bad_record"
    assert samples[0].metadata["pair_id"] == 48
    records = scored("mmvp", data, {i: "(a)" if t == 0 else "(b)" for i, t in TRUTH.items()})
    assert records[0].error is not None and records[1].error is None
    metrics = get_task("mmvp").aggregate(records)
    assert metrics["pair_accuracy"].n == 3 and metrics["accuracy"].n == 7


def test_missing_image_folder_is_a_usage_error(tmp_path: Path) -> None:
    data = write_mmvp(tmp_path)
    shutil.rmtree(data / "MMVP" / "MMVP" / "MMVP Images")
    with pytest.raises(UsageError, match="MMVP Images"):
        get_task("mmvp").load(TaskContext(data_dir=data))


def test_bom_in_the_csv_header_is_tolerated(tmp_path: Path) -> None:
    data = write_mmvp(tmp_path)
    csv_path = data / "MMVP" / "MMVP" / "Questions.csv"
    csv_path.write_bytes("\ufeff".encode() + csv_path.read_bytes())
    assert [int(s.id) for s in load("mmvp", data)] == [i for i, *_ in PUBLISHED]


# --- the fixture layout end to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("data"), ["MMVP/MMVP"], n=12, corrupt=1)


def test_limit_keeps_whole_pairs(fixture_data: Path) -> None:
    assert [s.id for s in load("mmvp", fixture_data, limit=5)] == ["1", "2", "3", "4"]
    assert len(load("mmvp", fixture_data, limit=6)) == 6


def test_run_end_to_end(tiny_llava: Path, fixture_data: Path, tmp_path: Path) -> None:
    code, run_dir = run_tasks(tiny_llava, fixture_data, tmp_path, "mmvp", "--max-error-rate", "0.5")
    assert code == 0
    result = run_json(run_dir)["tasks"]["mmvp"]
    lines = sample_lines(run_dir, "mmvp")
    assert result["n"] == len(lines) == 12 and result["dataset"]["id"] == "MMVP/MMVP"
    failed = [s for s in lines if s["error"]]
    assert len(failed) == 1 and failed[0]["error_category"] == "image_decode"
    ok = [s for s in lines if s["error"] is None]
    for s in ok:
        assert s["scores"]["accuracy"] == float(s["parsed"] is not None and s["parsed"] == s["target"])
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(mean_x100([s["scores"]["accuracy"] for s in ok]))
    pairs: dict[int, list[dict]] = {}
    for s in lines:
        pairs.setdefault(s["metadata"]["pair_id"], []).append(s)
    whole = [all(s["scores"].get("accuracy") == 1.0 for s in p)
             for p in pairs.values() if not any(s["error"] for s in p)]
    pair = result["metrics"]["pair_accuracy"]
    assert pair["n"] == len(whole) == 5  # the pair with the corrupt image is left out
    assert pair["value"] == pytest.approx(mean_x100([float(w) for w in whole]))
    assert main(["score", str(run_dir), "--check"]) == 0  # rescoring from the stored records agrees


def test_mmvp_original_is_a_separate_task_name(tiny_llava: Path, tmp_path: Path) -> None:
    assert get_task("mmvp_original").corrected is False and get_task("mmvp").corrected is True
    code = main(["run", "--model", str(tiny_llava), "--tasks", "mmvp", "--data-dir", str(tmp_path),
                 "--output", str(tmp_path / "out"), "--no-progress"])
    assert code == 2  # no copy under --data-dir: a usage error, not a crash
