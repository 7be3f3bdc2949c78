"""lmms-eval's result files read as evalkit runs (evalkit.interop.lmms_results), in leaderboard and compare.

The files here are written in the exact shape lmms-eval 0.7.3 writes (checked against files its own
EvaluationTracker wrote in tests/test_lmms_bridge.py); reading them needs no lmms-eval installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from result_factory import TaskSpec, make_run

from evalkit.cli import main
from evalkit.commands.compare import compare_runs
from evalkit.core.errors import UsageError
from evalkit.commands.leaderboard import build_leaderboard
from evalkit.interop.lmms_results import find_results_file, metric_key, numeric_scores, read_lmms_run, read_lmms_samples


def _configs() -> dict[str, Any]:
    return {
        "vqav2_val": {"task": "vqav2_val", "dataset_path": "lmms-lab-encoder/VQAv2", "test_split": "validation",
                      "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
                      "generation_kwargs": {"max_new_tokens": 16, "until": ["\n\n"]},
                      "process_results": "<function vqav2_process_results_val at 0x7f0418142200>"},
        "refcoco_bbox_rec_val": {
            "task": "refcoco_bbox_rec_val", "dataset_path": "lmms-lab-encoder/RefCOCO", "test_split": "val",
            "metric_list": [{"metric": "refcoco_IoU", "aggregation": "<function refcoco_bbox_rec_iou at 0x1>"},
                            {"metric": "refcoco_ACC@0.5", "aggregation": "<function refcoco_bbox_rec_acc05 at 0x2>"}],
            "generation_kwargs": {"until": ["ASSISTANT:"]}},
        "ok_vqa_val2014": {"task": "ok_vqa_val2014", "dataset_path": "lmms-lab-encoder/OK-VQA",
                           "test_split": "val2014",
                           "metric_list": [{"metric": "exact_match"}, {"metric": "submission"}]},
    }


def write_lmms_output(folder: Path, date: str, vqa: list[float], model: str = "llava-hf/llava-1.5-7b-hf") -> Path:
    """An lmms-eval run folder entry: ``<date>_results.json`` and ``<date>_samples_vqav2_val.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    mean = sum(vqa) / len(vqa)
    results = {
        "results": {
            "vqav2_val": {"alias": "vqav2_val", "exact_match,none": mean, "exact_match_stderr,none": 0.05,
                          "exact_match_stderr_clt,none": 0.05, "exact_match_stderr_clustered,none": "N/A"},
            "refcoco_bbox_rec_val": {"alias": "refcoco_bbox_rec_val", "refcoco_IoU,none": 0.41,
                                     "refcoco_IoU_stderr,none": "N/A", "refcoco_ACC@0.5,none": 0.375,
                                     "refcoco_ACC@0.5_stderr,none": "N/A"},
            "ok_vqa_val2014": {"alias": "ok_vqa_val2014", "exact_match,none": 0.5, "exact_match_stderr,none": "N/A",
                               "submission,none": None, "submission_stderr,none": "N/A",
                               "exact_match,flexible": 0.625, "exact_match_stderr,flexible": "N/A"},
        },
        "group_subtasks": {"vqav2_val": [], "refcoco_bbox_rec_val": [], "ok_vqa_val2014": []},
        "configs": _configs(),
        "versions": {"vqav2_val": "Yaml"},
        "n-shot": {"vqav2_val": 0},
        "higher_is_better": {"vqav2_val": {"exact_match": True}},
        "n-samples": {"vqav2_val": {"original": 214354, "effective": len(vqa)},
                      "refcoco_bbox_rec_val": {"original": 8, "effective": 8},
                      "ok_vqa_val2014": {"original": 8, "effective": 8}},
        "config": {"model": "llava_hf", "model_args": f"pretrained={model},dtype=bfloat16", "batch_size": 1,
                   "device": "cuda:0", "limit": len(vqa), "random_seed": 0},
        "git_hash": "be434cc", "lmms_eval_version": "0.7.3", "date": date,
        "model_source": "llava_hf", "model_name": model, "model_name_sanitized": model.replace("/", "__"),
        "total_evaluation_time_seconds": "123.5",
    }
    file = folder / f"{date}_results.json"
    file.write_text(json.dumps(results, indent=2))
    lines = []
    for i, score in enumerate(vqa):
        line: dict[str, Any] = {"doc_id": i, "target": "answer", "filtered_resps": f"answer {i}",
                                "token_counts": [{"input_tokens": 80 + i, "output_tokens": 2}], "doc_hash": "h",
                                "exact_match": score, "input": f"Question {i}?\nAnswer the question using a single "
                                                                f"word or phrase."}
        if i == 0:  # an older lmms-eval line: arguments instead of input, raw resps next to filtered ones
            line.pop("input")
            line.update(arguments={"gen_args_0": {"arg_0": "Question 0?", "arg_1": {"max_new_tokens": 16}}},
                        resps=[["  answer 0\n"]])
        lines.append(json.dumps(line))
    (folder / f"{date}_samples_vqav2_val.jsonl").write_text("\n".join(lines) + "\n")
    return file


BASE = [1.0, 0.0, 1.0, 0.3333333333333333, 1.0, 0.0, 1.0, 1.0]


def test_results_file_becomes_a_run_record(tmp_path: Path) -> None:
    file = write_lmms_output(tmp_path / "llava-hf__llava-1.5-7b-hf", "20250102_030405", BASE)
    run = read_lmms_run(file)
    assert (run.run_id, run.status, run.backend) == ("lmms-eval_20250102_030405", "completed", "lmms-eval")
    assert run.created_at == "2025-01-02T03:04:05+08:00"  # lmms-eval dates are UTC+8
    assert (run.model.name, run.model.checkpoint, run.model.family) == ("llava-hf/llava-1.5-7b-hf",) * 2 + (
        "lmms-eval:llava_hf",)
    assert run.config.tasks == ["lmms:vqav2_val", "lmms:refcoco_bbox_rec_val", "lmms:ok_vqa_val2014"]
    assert (run.config.batch_size, run.config.limit, run.config.device) == (1, 8, "cuda:0")
    assert run.telemetry.wall_s == 123.5 and run.environment["lmms_eval"] == "0.7.3"
    vqa = run.tasks["lmms:vqav2_val"]
    assert vqa.primary_metric == "exact_match" and vqa.n == 8
    assert vqa.metrics["exact_match"].value == pytest.approx(sum(BASE) / 8)
    assert vqa.metrics["exact_match"].stderr == 0.05 and vqa.metrics["exact_match"].n == 8
    assert (vqa.dataset.id, vqa.dataset.split, vqa.dataset.n) == ("lmms-lab-encoder/VQAv2", "validation", 214354)
    assert vqa.generation == {"max_new_tokens": 16, "until": ["\n\n"]}
    rec = run.tasks["lmms:refcoco_bbox_rec_val"]
    assert rec.primary_metric == "refcoco_IoU" and set(rec.metrics) == {"refcoco_IoU", "refcoco_ACC@0.5"}
    assert rec.metrics["refcoco_IoU"].stderr is None  # "N/A"
    ok = run.tasks["lmms:ok_vqa_val2014"]  # the submission aggregation has no value; a second filter keeps its name
    assert set(ok.metrics) == {"exact_match", "exact_match,flexible"}


def test_sample_lines_become_sample_records(tmp_path: Path) -> None:
    file = write_lmms_output(tmp_path, "20250102_030405", BASE)
    records = {r.id: r for r in read_lmms_samples(file, "lmms:vqav2_val")}
    assert sorted(records, key=int) == [str(i) for i in range(8)]
    first, second = records["0"], records["1"]
    assert first.prompt == "Question 0?" and first.output == "  answer 0\n"  # raw response, not the filtered one
    assert second.prompt.startswith("Question 1?\n") and second.output == "answer 1"
    assert second.parsed == {"exact_match": 0.0} and second.scores == {"exact_match": 0.0}
    assert (second.n_prompt_tokens, second.n_generated_tokens) == (81, 2)
    assert second.task == "lmms:vqav2_val" and second.metadata["doc_id"] == 1
    assert read_lmms_samples(file, "lmms:refcoco_bbox_rec_val") == []  # not logged


def test_names_and_scores() -> None:
    assert metric_key("exact_match", "none") == "exact_match"
    assert metric_key("exact_match", "flexible") == "exact_match,flexible"
    assert numeric_scores({"a": 1, "b": True, "c": {"pred": [0, 0, 1, 1]}, "d": float("nan"), "e": "x"}) == \
        {"a": 1.0, "b": 1.0}
    assert numeric_scores("not a dict") == {}


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "20250101_000000_results.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="20250101_000000_results.json is not readable JSON"):
        read_lmms_run(bad)
    bad.write_text(json.dumps({"something": "else"}))
    with pytest.raises(UsageError, match="no 'results' object"):
        read_lmms_run(bad)
    good = write_lmms_output(tmp_path / "m", "20250102_030405", BASE)
    samples = good.parent / "20250102_030405_samples_vqav2_val.jsonl"
    samples.write_text(samples.read_text() + '{"target": "no doc id"}\n')
    with pytest.raises(UsageError, match=r"_samples_vqav2_val.jsonl:9 is not an lmms-eval sample line"):
        read_lmms_samples(good, "lmms:vqav2_val")


def test_leaderboard_finds_lmms_eval_runs_and_skips_broken_ones(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    make_run(tmp_path / "evalkit", "run-a", {"lmms:vqav2_val": TaskSpec([1.0, 0.0, 1.0, 1.0], metric="exact_match")})
    lmms = tmp_path / "lmms-eval" / "llava-hf__llava-1.5-7b-hf"
    write_lmms_output(lmms, "20250102_030405", BASE)
    write_lmms_output(lmms, "20250103_030405", [1.0] * 8)
    (lmms / "20250104_000000_results.json").write_text("[]")
    board = build_leaderboard(tmp_path)
    assert len(board.entries) == 3 and len(board.skipped) == 1 and "20250104_000000" in board.skipped[0]
    column = next(c for c in board.columns if c.task == "lmms:vqav2_val")
    best = board.entries[0]  # ordered by the first task column, best first
    assert column.metric == "exact_match"
    assert best.record.run_id == "lmms-eval_20250103_030405" and best.score(column).value == 1.0
    assert best.relpath == "lmms-eval/llava-hf__llava-1.5-7b-hf/20250103_030405_results.json"
    assert main(["leaderboard", str(tmp_path), "--csv", str(tmp_path / "board.csv")]) == 0
    csv_text = (tmp_path / "board.csv").read_text()
    assert csv_text.count(",lmms-eval,") == 2 and "lmms:vqav2_val/exact_match" in csv_text


def test_compare_two_lmms_eval_runs_sample_by_sample(tmp_path: Path) -> None:
    from evalkit.commands.compare import CompareOptions

    base = write_lmms_output(tmp_path / "a", "20250102_030405", BASE)
    worse = [0.0, 0.0, 0.0, 0.3333333333333333, 1.0, 0.0, 0.0, 0.0]
    cand = write_lmms_output(tmp_path / "b", "20250103_030405", worse)
    cmp = compare_runs(base, cand.parent, CompareOptions(tasks=("lmms:vqav2_val",)))
    (vqa,) = cmp.tasks
    assert vqa.n_shared == 8 and (vqa.n_worse, vqa.n_better) == (4, 0)
    (metric,) = vqa.metrics
    assert metric.delta == pytest.approx((sum(worse) - sum(BASE)) / 8)
    assert metric.test is not None and metric.test.n == 8  # paired by doc_id
    assert cmp.only_in_baseline == [] and cmp.baseline.describe()["backend"] == "lmms-eval"
    with pytest.raises(UsageError, match=r"_samples_refcoco_bbox_rec_val.jsonl is missing; rerun lmms-eval with "
                                         r"--log_samples"):
        compare_runs(base, cand)  # every common task: refcoco's samples were not logged
    write_lmms_output(tmp_path / "a", "20250105_000000", BASE)
    with pytest.raises(UsageError, match="holds 2 lmms-eval runs"):
        compare_runs(tmp_path / "a", cand)
    assert find_results_file(tmp_path / "b") == cand
