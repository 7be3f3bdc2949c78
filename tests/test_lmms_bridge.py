"""`evalkit run --tasks lmms:<task>`: installed lmms-eval tasks through evalkit's adapters and backends.

The reference for every check is lmms-eval itself: its evaluator (``simple_evaluate``) runs the same task
on the same local files with a replay model that answers what the bridge was given, so prompts,
generation limits, per-sample scores and metrics can be compared one to one. Its output files then feed
`evalkit compare` and `evalkit leaderboard`. Skipped only when lmms-eval is not installed (except the
missing-dependency test, which needs no lmms-eval).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.core.results import SampleRecord
from evalkit.tasks import expand_tasks, get_task
from evalkit.tasks.base import ParseContext, TaskContext
from evalkit.core.types import GenerationSettings

DATE = "20250102_030405"


def needs_lmms() -> None:
    pytest.importorskip("lmms_eval")


@pytest.fixture(autouse=True, scope="module")
def _datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """lmms-eval's datasets cache (arrow copies of the fixtures) in a temporary folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path_factory.mktemp("lmms-cache")))
    yield
    mp.undo()


# -- fixtures in the layout each lmms-eval YAML names (DIR/<dataset_path>) --------------------------

def _move(root: Path, src: str, dst: str) -> Path:
    (root / dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(root / src), str(root / dst))
    return root / dst


def write_lmms_mmvp(root: Path, n: int = 8) -> Path:
    """lmms-lab-eval/MMVP (parquet, split train: Index, Question, Options, Correct Answer, image) from the
    MMVP/MMVP fixture (Questions.csv + image files)."""
    from evalkit.testing.hub_fixtures import I64, STR, Image, write_fixture, write_split

    src = write_fixture("MMVP/MMVP", root / "_mmvp_src", n=n, seed=0)
    with open(src / "Questions.csv", encoding="utf-8") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    for row in rows:
        row["Index"] = int(row["Index"])
        row["image"] = {"bytes": (src / "MMVP Images" / f"{row['Index']}.jpg").read_bytes(), "path": None}
    features = {"Index": I64, "Question": STR, "Options": STR, "Correct Answer": STR, "image": Image()}
    folder = root / "lmms-lab-eval" / "MMVP"
    write_split(folder, "train", rows, features)
    shutil.rmtree(root / "_mmvp_src")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --data-dir mirroring lmms-eval 0.7.3's dataset paths: VQAv2, RefCOCO, OK-VQA, MMVP."""
    from evalkit.testing.hub_fixtures import write_fixture

    root = tmp_path_factory.mktemp("lmms-data")
    write_fixture("lmms-lab/VQAv2", root, n=8, seed=0)
    _move(root, "lmms-lab/VQAv2", "lmms-lab-encoder/VQAv2")
    write_fixture("lmms-lab/RefCOCO", root, n=4, seed=1)
    _move(root, "lmms-lab/RefCOCO", "lmms-lab-encoder/RefCOCO")
    write_fixture("lmms-lab/OK-VQA", root, n=6, seed=2)
    _move(root, "lmms-lab/OK-VQA", "lmms-lab-encoder/OK-VQA")
    write_lmms_mmvp(root)
    return root


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The VQAv2 mirror with one truncated image."""
    from evalkit.testing.hub_fixtures import write_fixture

    root = tmp_path_factory.mktemp("lmms-broken")
    write_fixture("lmms-lab/VQAv2", root, n=8, seed=0, corrupt=1)
    _move(root, "lmms-lab/VQAv2", "lmms-lab-encoder/VQAv2")
    return root


def table_files(root: Path, dataset: str, split: str) -> list[str]:
    return sorted(str(p) for p in (root / dataset / "data").glob(f"{split}-*.parquet"))


# -- without lmms-eval -------------------------------------------------------------------------------

def test_missing_lmms_eval_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.interop.lmms_bridge import lmms_api, task_index

    lmms_api.cache_clear()
    task_index.cache_clear()
    monkeypatch.setitem(sys.modules, "lmms_eval", None)  # import lmms_eval -> ImportError
    try:
        code = main(["run", "--model", "llava", "--tasks", "vqav2,lmms:vqav2_val", "--no-progress"])
    finally:
        lmms_api.cache_clear()
        task_index.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["evalkit: error: lmms-eval (needed for lmms: tasks) is not installed; "
                   "run: pip install 'evalkit[lmms]'"]


def test_generation_kwargs_are_taken_as_written() -> None:
    from evalkit.interop.lmms_bridge import DEFAULT_MAX_NEW_TOKENS, generation_settings

    settings, notes = generation_settings({"max_new_tokens": 64, "temperature": 0, "top_p": 1.0, "num_beams": 1,
                                           "do_sample": False, "until": ["\n\n"]})
    assert settings == GenerationSettings(max_new_tokens=64, stop=("\n\n",), temperature=0.0, top_p=1.0)
    assert notes == []
    settings, notes = generation_settings({"until": "ASSISTANT:", "temperature": 0.7, "do_sample": False,
                                           "image_aspect_ratio": "pad"})
    assert settings == GenerationSettings(max_new_tokens=DEFAULT_MAX_NEW_TOKENS, stop=("ASSISTANT:",), temperature=0.0)
    assert len(notes) == 2 and "image_aspect_ratio" in notes[1]
    assert generation_settings({"max_new_tokens": 8, "temperature": 0.5})[0].temperature == 0.5
    with pytest.raises(UsageError, match="num_beams=5"):
        generation_settings({"num_beams": 5})


# -- names and configs ----------------------------------------------------------------------------------

def test_names_expand_groups_and_tags_and_typos_get_a_hint() -> None:
    needs_lmms()
    assert expand_tasks("vqav2,lmms:vqav2") == ["vqav2_val", "lmms:vqav2_val", "lmms:vqav2_test"]
    assert expand_tasks("lmms:refcoco_bbox_rec") == [f"lmms:refcoco_bbox_rec_{s}" for s in ("test", "testA", "testB",
                                                                                              "val")]
    assert expand_tasks("lmms:mmvp,lmms:mmvp") == ["lmms:mmvp"]
    with pytest.raises(UsageError, match=r"no task or group 'vqav2_vall'; did you mean lmms:vqav2_val"):
        expand_tasks("lmms:vqav2_vall")
    with pytest.raises(UsageError, match="needs an lmms-eval task name"):
        expand_tasks("lmms:")
    with pytest.raises(UsageError, match="is an lmms-eval group"):
        get_task("lmms:vqav2")


def test_task_follows_its_yaml() -> None:
    needs_lmms()
    vqa = get_task("lmms:vqav2_val")
    assert (vqa.name, vqa.kind, vqa.primary_metric, vqa.percent) == ("lmms:vqav2_val", "open", "exact_match", False)
    # max_new_tokens 16 from generation_kwargs; until defaults to lmms-eval's ["\n\n"] (TaskConfig)
    assert vqa.generation == GenerationSettings(max_new_tokens=16, stop=("\n\n",))
    rec = get_task("lmms:refcoco_bbox_rec_val")
    assert rec.primary_metric == "refcoco_IoU" and rec.metric_names[3] == "refcoco_ACC@0.5"
    assert rec.generation == GenerationSettings(max_new_tokens=1024, stop=("ASSISTANT:",))
    assert rec.notes == ["generation_kwargs has no max_new_tokens: 1024, the default of lmms-eval's HF models"]
    assert get_task("lmms:nocaps_val").generation == GenerationSettings(max_new_tokens=64, stop=("\n\n",))


@pytest.mark.parametrize(("task", "why"), [("hellaswag", "output_type multiple_choice"),
                                           ("videomme", "dataset_kwargs cache_dir|dataset_kwargs video")])
def test_unsupported_tasks_say_why(task: str, why: str) -> None:
    needs_lmms()
    with pytest.raises(UsageError, match=why):
        get_task(f"lmms:{task}")


# -- documents and prompts ---------------------------------------------------------------------------

def test_refcoco_documents_come_from_lmms_evals_process_docs(data_dir: Path) -> None:
    """One sample per referring expression, with lmms-eval's prompt and its [0, 1] target box."""
    needs_lmms()
    import pyarrow.parquet as pq

    task = get_task("lmms:refcoco_bbox_rec_val")
    data = task.load(TaskContext(data_dir=data_dir))
    rows = [r for f in table_files(data_dir, "lmms-lab-encoder/RefCOCO", "val") for r in pq.read_table(f).to_pylist()]
    expressions = [(row, e) for row in rows for e in row["answer"]]
    samples = list(data.samples)
    assert data.n == data.dataset.n == len(samples) == len(expressions) > len(rows)
    assert data.dataset.id == "lmms-lab-encoder/RefCOCO" and data.dataset.content_hash
    for k, (sample, (row, expression)) in enumerate(zip(samples, expressions)):
        assert sample.id == str(k) and sample.load_error is None and len(sample.images) == 1
        assert sample.question.startswith("Bounding box coordinates are specified in the format")
        assert sample.question.endswith(": " + expression)
        width, height = sample.images[0].load().size
        x, y, w, h = row["bbox"]
        assert sample.target == pytest.approx([x / width, y / height, (x + w) / width, (y + h) / height])
        assert sample.metadata["doc"]["answer"] == expression and "image" not in sample.metadata["doc"]


def test_mmvp_prompt_is_lmms_evals(data_dir: Path) -> None:
    needs_lmms()
    samples = list(get_task("lmms:mmvp").load(TaskContext(data_dir=data_dir, limit=3)).samples)
    assert len(samples) == 3
    assert samples[0].question.endswith("\nA. Left\nB. Right\nAnswer with the option's letter from the given "
                                        "choices directly.")
    assert samples[0].target in ("A", "B")


def test_a_missing_mirror_names_the_expected_folder(tmp_path: Path) -> None:
    needs_lmms()
    with pytest.raises(UsageError, match=r"lmms-lab-encoder/VQAv2 under .* \(expected .*lmms-lab-encoder/VQAv2\)"):
        get_task("lmms:vqav2_val").load(TaskContext(data_dir=tmp_path))


# -- lmms-eval itself as the reference --------------------------------------------------------------

def bridge_records(name: str, data_dir: Path, answer: Callable[[dict[str, Any], int], str]) -> tuple[Any, list[Any]]:
    """The bridge's samples for ``lmms:<name>`` with scripted outputs, parsed and scored as the runner does."""
    task = get_task(f"lmms:{name}")
    records = []
    for sample in task.load(TaskContext(data_dir=data_dir)).samples:
        assert sample.load_error is None
        output = answer(sample.metadata["doc"], int(sample.id))
        rec = SampleRecord(id=sample.id, task=task.name, prompt=sample.question, output=output, target=sample.target,
                           metadata=sample.metadata)
        rec.parsed = task.parse(output.strip(), rec.metadata, ParseContext())
        rec.scores = task.score(rec)
        records.append(rec)
    return task, records


def lmms_eval_replay(name: str, split: str, files: list[str], outputs: dict[int, str],
                     output_path: Path | None = None) -> tuple[dict[str, Any], dict[int, tuple[Any, Any]]]:
    """lmms-eval's evaluator on the same files, its model answering ``outputs[doc_id]``. Returns its results
    (samples included) and what it asked the model: doc_id -> (context, generation kwargs). With
    ``output_path`` it also writes its result files as its command line does."""
    from evalkit.interop.lmms_bridge import lmms_api

    lmms_api()
    from lmms_eval import evaluator
    from lmms_eval.api.model import lmms
    from lmms_eval.loggers import EvaluationTracker

    asked: dict[int, tuple[Any, Any]] = {}

    class Replay(lmms):  # type: ignore[misc]
        def generate_until(self, requests: list[Any]) -> list[str]:
            out = []
            for request in requests:
                context, gen_kwargs, _, doc_id, _, _ = request.args
                asked[doc_id] = (context, dict(gen_kwargs))
                out.append(outputs[doc_id])
            return out

        def loglikelihood(self, requests: list[Any]) -> list[Any]:
            raise NotImplementedError

        def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
            raise NotImplementedError

    tracker = EvaluationTracker(output_path=str(output_path)) if output_path else None
    local = {"task": name, "dataset_path": "parquet", "dataset_kwargs": {"data_files": {split: files}}}
    results = evaluator.simple_evaluate(model=Replay(), model_args="pretrained=replay-model", tasks=[local],
                                        log_samples=True, bootstrap_iters=1000, evaluation_tracker=tracker,
                                        datetime_str=DATE)
    if tracker is not None:
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples, datetime_str=DATE)
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
        results["samples"] = samples
    return results, asked


def _vqa_answer(doc: dict[str, Any], k: int) -> str:
    return [doc["multiple_choice_answer"], f" {doc['multiple_choice_answer'].capitalize()}.", "purple"][k % 3]


def _box_answer(doc: dict[str, Any], k: int) -> str:
    x1, y1, x2, y2 = doc["bbox"]
    shift = 0.25 * (x2 - x1) * (k % 3)
    return "no idea" if k % 4 == 3 else "[" + ", ".join(f"{v:.3f}" for v in (x1 + shift, y1, x2 + shift, y2)) + "]"


def _choice_answer(doc: dict[str, Any], k: int) -> str:
    right = "A" if "(a)" in doc["Correct Answer"] else "B"
    return [right, f"({right})", "B" if right == "A" else "A"][k % 3]


# lmms-eval task -> (split, dataset folder, scripted answer)
REPLAYS = {
    "vqav2_val": ("validation", "lmms-lab-encoder/VQAv2", _vqa_answer),
    "refcoco_bbox_rec_val": ("val", "lmms-lab-encoder/RefCOCO", _box_answer),
    "mmvp": ("train", "lmms-lab-eval/MMVP", _choice_answer),
}


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_prompts_limits_and_scores_equal_lmms_evals_own_run(name: str, data_dir: Path) -> None:
    needs_lmms()
    split, dataset, answer = REPLAYS[name]
    task, records = bridge_records(name, data_dir, answer)
    outputs = {int(r.id): r.output for r in records}
    results, asked = lmms_eval_replay(name, split, table_files(data_dir, dataset, split), outputs)
    assert sorted(asked) == sorted(outputs)  # the same documents, in lmms-eval's doc_id order
    for rec in records:
        context, gen_kwargs = asked[int(rec.id)]
        assert rec.prompt == context
        assert gen_kwargs["until"] == list(task.generation.stop)
        assert gen_kwargs.get("max_new_tokens", 1024) == task.generation.max_new_tokens
    logged = {s["doc_id"]: s for s in results["samples"][name]}
    for rec in records:
        for metric, value in rec.parsed.items():
            assert json.loads(json.dumps(logged[int(rec.id)][metric])) == value, (rec.id, metric)
    ours = task.aggregate(records)
    theirs = results["results"][name]
    for metric in task.metric_names:
        assert ours[metric].value == pytest.approx(theirs[f"{metric},none"], abs=1e-12), metric
        assert ours[metric].n == len(records)
    assert 0 < ours[task.primary_metric].value < 1  # the scripted answers give a non-trivial score


def test_submission_files_and_notes_reach_the_run_folder(data_dir: Path, tmp_path: Path) -> None:
    """ok_vqa's metric_list has a `submission` aggregation that only writes a file: the file is kept, no metric."""
    needs_lmms()
    task, records = bridge_records("ok_vqa_val2014", data_dir, lambda doc, k: doc["answers"][k % 10])
    metrics = task.aggregate(records)
    assert set(metrics) == {"exact_match"} and metrics["exact_match"].n == 6
    artifacts, notes = task.finalize(records, tmp_path)
    (relpath,) = artifacts.values()
    assert relpath.startswith("lmms_files/ok_vqa_val2014/submissions/ok_vqa-test-submission-")
    submission = json.loads((tmp_path / relpath).read_text())
    assert [s["image"] for s in submission] == [f"{r.metadata['doc']['question_id']}.jpg" for r in records]
    assert notes == ["generation_kwargs has no max_new_tokens: 1024, the default of lmms-eval's HF models"]


def test_reasoning_is_stripped_before_scoring_as_lmms_eval_does() -> None:
    needs_lmms()
    doc = {"question_id": 1, "question": "Is it?",
           "answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": i} for i in range(10)]}
    meta = {"doc_id": 0, "doc": doc}
    answer = "<think>no, maybe no</think> yes"
    assert get_task("lmms:vqav2_val").parse(answer, meta, ParseContext()) == {"exact_match": 0.0}
    for key, value in (("reasoning_tags", [["<think>", "</think>"]]), ("auto_strip_thinking", True)):
        task = get_task("lmms:vqav2_val")
        task.config[key] = value
        assert task.parse(answer, meta, ParseContext()) == {"exact_match": 1.0}, key


# -- end to end with the tiny LLaVA -------------------------------------------------------------------

def test_run_vqav2_through_lmms_with_the_tiny_llava(tiny_llava: Path, broken_dir: Path, tmp_path: Path) -> None:
    needs_lmms()
    import pyarrow.parquet as pq

    broken = broken_dir
    out = tmp_path / "out"
    code = main(["run", "--model", str(tiny_llava), "--tasks", "lmms:vqav2_val", "--data-dir", str(broken),
                 "--output", str(out), "--no-progress", "--batch-size", "4", "--max-error-rate", "0.5"])
    assert code == 0
    run_dir = next(out.iterdir())
    result = json.loads((run_dir / "run.json").read_text())["tasks"]["lmms:vqav2_val"]
    assert (result["n"], result["n_errors"], result["errors_by_category"]) == (8, 1, {"image_decode": 1})
    assert result["generation"]["max_new_tokens"] == 16 and result["generation"]["stop"] == ["\n\n"]
    assert result["dataset"]["id"] == "lmms-lab-encoder/VQAv2" and result["primary_metric"] == "exact_match"

    files = table_files(broken, "lmms-lab-encoder/VQAv2", "validation")
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    scorer = get_task("lmms:vqav2_val").config["process_results"]  # lmms-eval's vqav2_process_results_val
    lines = [json.loads(x) for x in (run_dir / "samples" / "lmms:vqav2_val.jsonl").read_text().splitlines()]
    ok = [s for s in lines if s["error"] is None]
    assert len(ok) == 7
    for s in ok:
        row = rows[int(s["id"])]
        assert s["prompt"] == (f"USER: <image>\n{row['question']}\nAnswer the question using a single word or phrase."
                               " ASSISTANT:")
        assert 1 <= s["n_generated_tokens"] <= 16 and "\n\n" not in s["output"]
        expected = scorer({**row, "image": None}, [s["output"].strip()])["exact_match"]
        assert s["parsed"] == {"exact_match": expected} and s["scores"] == {"exact_match": expected}
    mean = sum(s["scores"]["exact_match"] for s in ok) / len(ok)
    assert result["metrics"]["exact_match"]["value"] == pytest.approx(mean, abs=1e-12)
    assert result["metrics"]["exact_match"]["n"] == 7
    assert main(["score", str(run_dir), "--check"]) == 0  # rescored from the files alone


# -- lmms-eval's result files in compare and leaderboard -------------------------------------------------

@pytest.fixture(scope="module")
def two_runs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any, list[Any]]:
    """The same vqav2_val answers scored by lmms-eval (its output folder) and by evalkit (a run folder)."""
    needs_lmms()
    from evalkit.core.results import ModelInfo, RunConfig, RunRecord, TaskResult, write_run
    from evalkit.core.store import SampleStore

    root = tmp_path_factory.mktemp("lmms-runs")
    task, records = bridge_records("vqav2_val", data_dir, _vqa_answer)
    lmms_eval_replay("vqav2_val", "validation", table_files(data_dir, "lmms-lab-encoder/VQAv2", "validation"),
                     {int(r.id): r.output for r in records}, output_path=root / "lmms-eval")
    results_file = next((root / "lmms-eval").rglob(f"{DATE}_results.json"))
    run_dir = root / "evalkit" / "run-1"
    SampleStore(run_dir).append(task.name, records)
    info = task.load(TaskContext(data_dir=data_dir)).dataset
    write_run(run_dir, RunRecord(
        run_id="run-1", status="completed", created_at="2025-01-02T03:04:05+00:00",
        model=ModelInfo(name="replay-model", family="llava", checkpoint="replay-model"), backend="hf",
        config=RunConfig(tasks=[task.name], batch_size=1),
        tasks={task.name: TaskResult(metrics=task.aggregate(records), primary_metric=task.primary_metric,
                                     n=len(records), dataset=info)}))
    return results_file, run_dir, task, records


def test_lmms_eval_results_convert_to_the_same_numbers(two_runs: tuple[Path, Path, Any, list[Any]]) -> None:
    from evalkit.interop.lmms_results import find_results_file, read_lmms_run, read_lmms_samples

    results_file, _, task, records = two_runs
    assert results_file.parent.name == "replay-model" and find_results_file(results_file.parent) == results_file
    run = read_lmms_run(results_file)
    assert (run.run_id, run.backend, run.model.name, run.status) == (f"lmms-eval_{DATE}", "lmms-eval", "replay-model",
                                                                    "completed")
    assert run.created_at == "2025-01-02T03:04:05+08:00"
    result = run.tasks["lmms:vqav2_val"]
    ours = task.aggregate(records)["exact_match"]
    assert result.primary_metric == "exact_match" and result.n == len(records) == 8
    assert result.metrics["exact_match"].value == pytest.approx(ours.value, abs=1e-12)
    assert result.metrics["exact_match"].stderr == pytest.approx(ours.stderr, rel=1e-9)
    assert result.generation == {"max_new_tokens": 16, "until": ["\n\n"]}
    samples = {s.id: s for s in read_lmms_samples(results_file, "lmms:vqav2_val")}
    for rec in records:
        assert samples[rec.id].scores == rec.scores and samples[rec.id].output == rec.output
        assert samples[rec.id].prompt == rec.prompt


def test_compare_an_lmms_eval_run_with_an_evalkit_run(two_runs: tuple[Path, Path, Any, list[Any]],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.commands.compare import compare_runs

    results_file, run_dir, _, records = two_runs
    cmp = compare_runs(results_file.parent, run_dir)
    (task,) = cmp.tasks
    assert task.task == "lmms:vqav2_val" and task.n_shared == len(records) and task.flips == []
    (metric,) = task.metrics
    assert metric.metric == "exact_match" and metric.delta == pytest.approx(0.0, abs=1e-9)
    assert metric.test is not None and metric.test.n == len(records)  # paired over doc ids
    assert main(["compare", str(results_file), str(run_dir), "--fail-on-regression", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["baseline"]["backend"] == "lmms-eval" and report["passed"] is True


def test_leaderboard_lists_lmms_eval_runs_next_to_evalkit_runs(two_runs: tuple[Path, Path, Any, list[Any]]) -> None:
    from evalkit.commands.leaderboard import build_leaderboard

    results_file, run_dir, task, records = two_runs
    board = build_leaderboard(run_dir.parent.parent)
    assert sorted(e.record.backend for e in board.entries) == ["hf", "lmms-eval"]
    assert [c.task for c in board.columns] == ["lmms:vqav2_val"]
    lmms_entry = next(e for e in board.entries if e.record.backend == "lmms-eval")
    assert lmms_entry.relpath == results_file.relative_to(run_dir.parent.parent).as_posix()
    scores = {e.record.backend: e.score(board.columns[0]).value for e in board.entries}
    assert scores["hf"] == pytest.approx(scores["lmms-eval"], abs=1e-12)
