"""`evalkit compare`: paired tests against hand-computed values, and the regression gate's exit codes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from result_factory import TaskSpec, make_run

from evalkit.cli import main
from evalkit.commands.compare import CompareOptions, compare_runs
from evalkit.metrics.paired import mcnemar_exact, paired_bootstrap, paired_test

# -- statistics against hand-computed values ----------------------------------------------------------


@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 6, 0.03125),          # 2 * (1/2)^6
    (6, 0, 0.03125),          # symmetric
    (1, 6, 0.125),            # 2 * (1 + 7) / 2^7
    (0, 1, 1.0),              # 2 * 1/2, capped
    (5, 5, 1.0),              # 2 * 638/1024 > 1, capped
    (0, 0, 1.0),              # no discordant pair
    (2, 10, 0.0385742188),    # 2 * (1 + 12 + 66) / 4096
])
def test_mcnemar_exact_hand_values(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected, abs=1e-9)


def test_mcnemar_large_counts_match_exact_integer_sum() -> None:
    b, c = 610, 700  # n > 1000 takes the log-space path
    n = b + c
    exact = 2 * sum(math.comb(n, i) for i in range(b + 1)) / 2**n
    assert mcnemar_exact(b, c) == pytest.approx(exact, rel=1e-9)
    assert 0.0 < exact < 0.05


def test_bootstrap_constant_difference() -> None:
    res = paired_bootstrap([0.5] * 20, n_boot=999, seed=3)
    assert (res.mean, res.ci_low, res.ci_high) == (0.5, 0.5, 0.5)
    assert res.p_value == pytest.approx(2 / 1000)  # no resample on the far side of 0: 2 * 1/(1 + B)


def test_bootstrap_two_point_distribution() -> None:
    # diffs {0, 1}: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4
    res = paired_bootstrap([0.0, 1.0], n_boot=8000, seed=1, alpha=0.05)
    assert res.mean == 0.5
    assert (res.ci_low, res.ci_high) == (0.0, 1.0)
    assert res.p_value == pytest.approx(0.5, abs=0.03)  # 2 * P(mean <= 0) = 2 * 1/4


def test_bootstrap_is_seeded() -> None:
    diffs = [0.1, -0.3, 0.7, 0.0, 0.25, -0.05, 0.4]
    assert paired_bootstrap(diffs, seed=7) == paired_bootstrap(diffs, seed=7)
    assert paired_bootstrap(diffs, seed=7) != paired_bootstrap(diffs, seed=8)


def test_paired_test_picks_mcnemar_for_binary_and_bootstrap_otherwise() -> None:
    base = [1.0] * 10 + [0.0] * 10
    cand = [0.0] * 6 + [1.0] * 4 + [0.0] * 10
    t = paired_test(base, cand, scale=100.0)
    assert (t.method, t.b, t.c, t.n) == ("mcnemar", 6, 0, 20)
    assert t.p_value == pytest.approx(0.03125) and t.significant
    assert t.mean_diff == pytest.approx(-30.0)  # 6 of 20 lost, in points
    t = paired_test([0.3, 0.6, 1.0, 0.0], [0.3, 0.6, 1.0, 0.0])
    assert t.method == "bootstrap" and t.mean_diff == 0 and t.p_value == 1.0 and not t.significant


# -- the gate -----------------------------------------------------------------------------------------

def _pair(tmp_path: Path, base: TaskSpec, cand: TaskSpec, task: str = "shapes_vqa") -> tuple[Path, Path]:
    return make_run(tmp_path, "base", {task: base}), make_run(tmp_path, "cand", {task: cand}, model="candidate")


def test_identical_runs_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = [1.0, 0.0, 1.0, 1.0] * 10
    base, cand = _pair(tmp_path, TaskSpec(scores), TaskSpec(scores))
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "no significant change" in out


def test_real_drop_fails_only_with_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base_scores = [1.0] * 30 + [0.0] * 10
    cand_scores = [0.0] * 6 + [1.0] * 24 + [0.0] * 10  # b=6, c=0: p = 0.03125
    base, cand = _pair(tmp_path, TaskSpec(base_scores), TaskSpec(cand_scores))
    assert main(["compare", str(base), str(cand / "run.json"), "--fail-on-regression", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    m = report["tasks"]["shapes_vqa"]["metrics"][0]
    assert (m["metric"], m["baseline"], m["candidate"], m["delta"]) == ("accuracy", 75.0, 60.0, -15.0)
    assert m["test"]["method"] == "mcnemar" and (m["test"]["b"], m["test"]["c"]) == (6, 0)
    assert m["test"]["p_value"] == pytest.approx(0.03125) and m["regression"] is True
    assert report["regressions"] == [{"task": "shapes_vqa", "metric": "accuracy", "delta": -15.0,
                                      "p_value": pytest.approx(0.03125)}]
    assert report["passed"] is False and report["exit_code"] == 1
    assert main(["compare", str(base), str(cand)]) == 0  # reported, not gated
    assert "regression" in capsys.readouterr().out
    # a stricter alpha makes the same drop not significant
    assert main(["compare", str(base), str(cand), "--fail-on-regression", "--alpha", "0.01"]) == 0


def test_wiggle_within_tolerance_passes(tmp_path: Path) -> None:
    base_scores = [1.0] * 100 + [0.0] * 100
    cand_scores = [0.0] * 2 + [1.0] * 98 + [1.0] + [0.0] * 99  # two lost, one won: -0.5 points
    base, cand = _pair(tmp_path, TaskSpec(base_scores), TaskSpec(cand_scores))
    cmp = compare_runs(base, cand, CompareOptions(tolerance=1.0))
    m = cmp.tasks[0].metrics[0]
    assert m.delta == -0.5 and m.test is not None and (m.test.b, m.test.c) == (2, 1)
    assert m.test.p_value == pytest.approx(1.0) and not cmp.regressions
    assert main(["compare", str(base), str(cand), "--fail-on-regression", "--tolerance", "1"]) == 0


def test_drop_beyond_tolerance_but_not_significant_passes(tmp_path: Path) -> None:
    base_scores = [1.0] * 20 + [0.0] * 20
    cand_scores = [0.0] * 2 + [1.0] * 18 + [0.0] * 20  # -5 points, b=2 c=0: p = 0.5
    base, cand = _pair(tmp_path, TaskSpec(base_scores), TaskSpec(cand_scores))
    m = compare_runs(base, cand).tasks[0].metrics[0]
    assert m.delta == -5.0 and m.test is not None and m.test.p_value == pytest.approx(0.5)
    assert m.verdict == "drop not significant" and not m.regression
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 0


def test_continuous_scores_use_the_bootstrap(tmp_path: Path) -> None:
    base_scores = [1.0, 0.6, 0.3, 1.0] * 25
    cand_scores = [0.7, 0.3, 0.0, 0.7] * 25  # every sample 0.3 lower: a sure drop of 30 points
    base, cand = _pair(tmp_path, TaskSpec(base_scores), TaskSpec(cand_scores))
    m = compare_runs(base, cand, CompareOptions(n_boot=500)).tasks[0].metrics[0]
    assert m.test is not None and m.test.method == "bootstrap"
    assert m.delta == pytest.approx(-30.0) and m.test.mean_diff == pytest.approx(-30.0)
    assert m.test.ci_low == pytest.approx(-30.0) and m.test.ci_high == pytest.approx(-30.0)
    assert m.test.p_value < 0.01 and m.regression
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 1


def test_failed_samples_are_left_out_of_the_pairing(tmp_path: Path) -> None:
    base_scores: list[float | None] = [1.0] * 10 + [0.0] * 10
    cand_scores: list[float | None] = [None] * 4 + [1.0] * 6 + [0.0] * 10
    base, cand = _pair(tmp_path, TaskSpec(base_scores), TaskSpec(cand_scores))
    t = compare_runs(base, cand).tasks[0]
    assert t.metrics[0].test is not None and t.metrics[0].test.n == 16
    assert "failed samples: baseline 0, candidate 4" in t.notes


def test_candidate_without_a_primary_value_fails_the_gate(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _pair(tmp_path, TaskSpec([1.0, 0.0, 1.0]), TaskSpec([None, None, None]))  # every sample failed
    m = compare_runs(base, cand).tasks[0].metrics[0]
    assert (m.metric, m.candidate, m.verdict, m.regression) == ("accuracy", None, "missing in candidate", True)
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 1
    assert "FAIL: shapes_vqa accuracy missing in candidate" in capsys.readouterr().out


def test_corpus_metric_compares_values_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = [1.0, 0.0] * 10
    base = make_run(tmp_path, "base", {"cap": TaskSpec(scores, corpus={"cider": 80.0}, primary="cider")})
    cand = make_run(tmp_path, "cand", {"cap": TaskSpec(scores, corpus={"cider": 70.0}, primary="cider")})
    cmp = compare_runs(base, cand)
    cider = cmp.tasks[0].metrics[0]
    assert (cider.metric, cider.primary, cider.delta, cider.test) == ("cider", True, -10.0, None)
    assert "no per-sample scores" in (cider.no_test or "")
    # without a paired test a primary drop beyond the tolerance fails on the tolerance alone
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 1
    assert "test not available" in capsys.readouterr().out
    assert main(["compare", str(base), str(cand), "--fail-on-regression", "--tolerance", "10"]) == 0


def test_corpus_primary_lists_flips_by_the_per_sample_metric(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # MMVP-style: pair accuracy (no per-sample score) is gated; flips are judged on per-question accuracy
    base = make_run(tmp_path, "base", {"pairs": TaskSpec([1.0] * 10, corpus={"pair_accuracy": 100.0},
                                                         primary="pair_accuracy")})
    cand = make_run(tmp_path, "cand", {"pairs": TaskSpec([1.0] * 7 + [0.0] * 3, corpus={"pair_accuracy": 70.0},
                                                         primary="pair_accuracy")})
    task = compare_runs(base, cand).tasks[0]
    assert (task.flip_metric, task.n_worse, task.n_better, len(task.flips)) == ("accuracy", 3, 0, 3)
    assert main(["compare", str(base), str(cand)]) == 0
    assert "3 samples worse, 0 better on accuracy" in capsys.readouterr().out


def test_secondary_metric_drop_does_not_gate(tmp_path: Path) -> None:
    scores = [1.0, 0.0] * 10
    base = make_run(tmp_path, "base", {"cap": TaskSpec(scores, corpus={"cider": 80.0})})
    cand = make_run(tmp_path, "cand", {"cap": TaskSpec(scores, corpus={"cider": 40.0})})
    cmp = compare_runs(base, cand)
    assert [m.verdict for m in cmp.tasks[0].metrics] == ["no significant change", "drop"]
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 0


def test_flipped_samples_are_listed_with_prompt_and_outputs(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    base_scores = [1.0] * 5 + [0.0] * 5
    cand_scores = [0.0] * 3 + [1.0] * 2 + [1.0] + [0.0] * 4
    outputs = ["[red]markup[/red] <b>x</b>"] * 10
    base, cand = _pair(tmp_path, TaskSpec(base_scores), TaskSpec(cand_scores, outputs=outputs))
    t = compare_runs(base, cand, CompareOptions(show=2)).tasks[0]
    assert (t.n_worse, t.n_better) == (3, 1)
    assert [(f.id, f.baseline_score, f.candidate_score) for f in t.flips] == [("q0", 1.0, 0.0), ("q1", 1.0, 0.0)]
    assert main(["compare", str(base), str(cand), "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "3 samples worse, 1 better" in out
    assert "USER: <image>\\nquestion 0 ASSISTANT:" in out
    assert "[red]markup[/red] <b>x</b>" in out  # shown literally, never read as rich markup
    assert "q2 " not in out  # only the first 2


def test_unscaled_metric_reads_in_its_own_units(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", {"t": TaskSpec([1.0] * 10)})
    cand = make_run(tmp_path, "cand", {"t": TaskSpec([0.0] * 10)})
    for run_dir, value in ((base, 1.0), (cand, 0.0)):  # rewrite as a metric reported on the x1 scale
        data = json.loads((run_dir / "run.json").read_text())
        data["tasks"]["t"]["metrics"]["accuracy"]["value"] = value
        (run_dir / "run.json").write_text(json.dumps(data))
    m = compare_runs(base, cand, CompareOptions(tolerance=0.5)).tasks[0].metrics[0]
    assert m.delta == -1.0 and m.test is not None and m.test.mean_diff == -1.0 and m.regression


# -- unusable input: exit 2 ---------------------------------------------------------------------------

def test_missing_run_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_run(tmp_path, "base", {"t": TaskSpec([1.0])})
    assert main(["compare", str(base), str(tmp_path / "nope"), "--fail-on-regression"]) == 2
    assert "no run.json" in capsys.readouterr().err


def test_malformed_run_is_exit_2(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", {"t": TaskSpec([1.0])})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text('{"schema_version": "1.0", "run_id": ')
    assert main(["compare", str(base), str(bad)]) == 2


def test_no_task_in_common_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_run(tmp_path, "base", {"a": TaskSpec([1.0])})
    cand = make_run(tmp_path, "cand", {"b": TaskSpec([1.0])})
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 2
    assert "no task in common" in capsys.readouterr().err


def test_unknown_task_filter_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _pair(tmp_path, TaskSpec([1.0]), TaskSpec([1.0]))
    assert main(["compare", str(base), str(cand), "--tasks", "shapes_vqa,vqav2_val"]) == 2
    assert "vqav2_val" in capsys.readouterr().err
    assert main(["compare", str(base), str(cand), "--tasks", "shapes_vqa"]) == 0


def test_dataset_change_is_exit_2_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _pair(tmp_path, TaskSpec([1.0, 0.0], content_hash="aaa"), TaskSpec([1.0, 0.0], content_hash="bbb"))
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 2
    assert "--allow-dataset-change" in capsys.readouterr().err
    assert main(["compare", str(base), str(cand), "--fail-on-regression", "--allow-dataset-change"]) == 0
    assert "dataset content differs" in capsys.readouterr().out


def test_missing_samples_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _pair(tmp_path, TaskSpec([1.0, 0.0]), TaskSpec([1.0, 0.0]))
    shutil.rmtree(cand / "samples")
    assert main(["compare", str(base), str(cand)]) == 2
    assert "samples/shapes_vqa.jsonl is missing" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--alpha", "0"], ["--alpha", "1.5"], ["--tolerance", "-1"], ["--show", "-1"]])
def test_bad_options_are_exit_2(tmp_path: Path, flag: list[str]) -> None:
    base, cand = _pair(tmp_path, TaskSpec([1.0]), TaskSpec([1.0]))
    assert main(["compare", str(base), str(cand), *flag]) == 2


# -- real runs: a tiny LLaVA and a damaged copy through `evalkit run` ---------------------------------

def _yes_sayer(folder: Path) -> Path:
    """A tiny LLaVA wired to answer "yes" to everything: its text layers add nothing to the residual
    stream, so each next token depends on the last one only, and the embeddings and lm_head chain
    "ASSISTANT:" -> "y" -> "es" -> </s>. It scores on the yes/no questions whose answer is yes."""
    import torch

    from evalkit.testing.tiny_llava import make_tiny_llava, save_checkpoint

    model, processor = make_tiny_llava(folder, seed=0)
    tok = processor.tokenizer
    chain = [tok("x ASSISTANT:").input_ids[-1], *tok.encode("yes", add_special_tokens=False), tok.eos_token_id]
    text = model.model.language_model
    with torch.no_grad():
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        for i, (prev, nxt) in enumerate(zip(chain, chain[1:], strict=False)):
            text.embed_tokens.weight[prev].zero_()
            text.embed_tokens.weight[prev, i] = 1.0
            model.lm_head.weight[nxt].zero_()
            model.lm_head.weight[nxt, i] = 50.0
    save_checkpoint(model, processor, folder)
    return folder


def _damaged_copy(src: Path, dst: Path, prefix: str, row: int | None = None) -> Path:
    """Copy a checkpoint, zeroing the weights whose hub name starts with ``prefix`` (only ``row`` if given)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    state = load_file(str(src / "model.safetensors"))
    hit = [k for k in state if k.startswith(prefix)]
    assert hit, f"no weight named {prefix}* in {src}"
    for key in hit:
        if row is None:
            state[key].zero_()
        else:
            state[key][row].zero_()
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def _run(model: Path | str, out: Path, *args: str) -> Path:
    code = main(["run", "--model", str(model), "--output", str(out), "--no-progress", *args])
    assert code in (0, 1), code
    (run_dir,) = [p for p in out.iterdir() if (p / "run.json").exists()]
    return run_dir


VQA_ARGS = ("--tasks", "vqav2", "--max-error-rate", "0.5")


@pytest.fixture(scope="module")
def yes_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    good = _yes_sayer(tmp_path_factory.mktemp("models") / "yes")
    from transformers import AutoTokenizer

    y_token = AutoTokenizer.from_pretrained(good).encode("yes", add_special_tokens=False)[0]
    bad = _damaged_copy(good, good.parent / "yes-damaged", "language_model.lm_head.weight", row=y_token)
    return good, bad


@pytest.fixture(scope="module")
def baseline_run(yes_models: tuple[Path, Path], vqav2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(yes_models[0], tmp_path_factory.mktemp("base-run"), *VQA_ARGS, "--data-dir", str(vqav2_dir))


@pytest.mark.slow
def test_real_drop_from_a_damaged_checkpoint(yes_models: tuple[Path, Path], baseline_run: Path, vqav2_dir: Path,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cand = _run(yes_models[1], tmp_path / "cand", *VQA_ARGS, "--data-dir", str(vqav2_dir), "--batch-size", "3")
    capsys.readouterr()
    assert main(["compare", str(baseline_run), str(cand), "--fail-on-regression", "--json", "--show", "3"]) == 1
    report = json.loads(capsys.readouterr().out)
    task = report["tasks"]["vqav2_val"]
    acc = task["metrics"][0]
    assert acc["metric"] == "accuracy" and acc["baseline"] > 10 and acc["candidate"] == 0.0
    assert acc["test"]["n"] == 22 and acc["test"]["p_value"] < 0.01 and acc["regression"]
    yes_no = next(m for m in task["metrics"] if m["metric"] == "accuracy.yes/no")
    assert yes_no["test"] is not None and yes_no["delta"] == pytest.approx(-yes_no["baseline"])
    assert task["n_worse"] >= 3 and task["n_better"] == 0
    flip = task["flips"][0]
    assert flip["baseline_output"] == "yes" and flip["candidate_output"] != "yes" and "ASSISTANT:" in flip["prompt"]
    # the same checkpoint, rerun with another batch size, is no regression
    again = _run(yes_models[0], tmp_path / "again", *VQA_ARGS, "--data-dir", str(vqav2_dir), "--batch-size", "5")
    assert main(["compare", str(baseline_run), str(again), "--fail-on-regression"]) == 0


@pytest.mark.slow
@pytest.mark.skipif(not (Path(__file__).parents[1] / "evalkit" / "reference_model" / "config.json").exists(),
                    reason="the bundled reference model is not built (make reference-model)")
def test_real_drop_reference_model_without_projector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.runner.models import reference_path

    blind = _damaged_copy(reference_path(), tmp_path / "blind", "multi_modal_projector.")
    base = _run("reference", tmp_path / "base", "--tasks", "shapes_vqa", "--limit", "40")
    cand = _run(blind, tmp_path / "cand", "--tasks", "shapes_vqa", "--limit", "40")
    capsys.readouterr()
    assert main(["compare", str(base), str(cand), "--fail-on-regression", "--json"]) == 1
    acc = json.loads(capsys.readouterr().out)["tasks"]["shapes_vqa"]["metrics"][0]
    assert acc["delta"] < -5 and acc["test"]["p_value"] < 0.05


@pytest.mark.slow
def test_ci_gate_script(yes_models: tuple[Path, Path], baseline_run: Path, vqav2_dir: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import yaml

    root = Path(__file__).parents[1]
    workflow = yaml.safe_load((root / "examples/ci/evalkit-gate.yml").read_text())
    assert any("examples/ci/gate.sh" in step.get("run", "") for step in workflow["jobs"]["gate"]["steps"])
    env = {**os.environ, "EVALKIT": f"{sys.executable} -m evalkit.cli", "EVALKIT_DATA_DIR": str(vqav2_dir),
           "EVALKIT_MAX_ERROR_RATE": "0.5"}

    def gate(model: Path, out: Path, baseline: Path = baseline_run) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(root / "examples/ci/gate.sh"), str(model), str(baseline)],
                              env={**env, "EVALKIT_OUT": str(out)}, capture_output=True, text=True, timeout=300)

    bad = gate(yes_models[1], tmp_path / "bad")  # the pass path is the same script with exit 0 from compare
    assert bad.returncode == 1, bad.stderr
    assert "gate: evaluating" in bad.stdout and "FAIL: vqav2_val accuracy" in bad.stdout
    report = json.loads((tmp_path / "bad" / "compare.json").read_text())
    assert report["passed"] is False and report["regressions"][0]["task"] == "vqav2_val"
    assert (tmp_path / "bad" / "compare.txt").read_text().startswith("baseline")
    missing = gate(yes_models[0], tmp_path / "missing", baseline=tmp_path / "nope")
    assert missing.returncode == 2 and "no run.json" in missing.stderr


def _mmvp_like(tmp_path: Path, name: str, broken_pairs: int, n_pairs: int = 40) -> Path:
    """n_pairs two-question pairs; in the first ``broken_pairs`` pairs the second question is wrong."""
    scores = [s for p in range(n_pairs) for s in (1.0, 0.0 if p < broken_pairs else 1.0)]
    meta = [{"pair_id": p, "options": ["red", "blue"]} for p in range(n_pairs) for _ in range(2)]
    pair_acc = round(100.0 * (n_pairs - broken_pairs) / n_pairs, 4)
    return make_run(tmp_path, name, {"mmvp": TaskSpec(scores, corpus={"pair_accuracy": pair_acc},
                                                      primary="pair_accuracy", metadata=meta)})


def test_pair_accuracy_is_tested_with_mcnemar_over_pairs(tmp_path: Path) -> None:
    base = _mmvp_like(tmp_path, "base", 0)
    cand = _mmvp_like(tmp_path, "cand", 10)  # 100 -> 75: ten pairs lost, none gained
    m = compare_runs(base, cand).tasks[0].metrics[0]
    assert (m.metric, m.delta, m.verdict, m.regression) == ("pair_accuracy", -25.0, "regression", True)
    assert (m.test.method, m.test.n) == ("mcnemar", 40)  # 40 pairs, not 80 questions
    assert m.test.p_value == pytest.approx(2 * 0.5 ** 10)
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 1


def test_small_pair_accuracy_drop_is_noise_not_a_regression(tmp_path: Path) -> None:
    base = _mmvp_like(tmp_path, "base", 0)
    cand = _mmvp_like(tmp_path, "cand", 2)  # 100 -> 95: two pairs lost, p = 0.5 over pairs
    m = compare_runs(base, cand).tasks[0].metrics[0]
    assert (m.delta, m.verdict, m.regression) == (-5.0, "drop not significant", False)
    assert m.test.p_value == pytest.approx(0.5)
    assert main(["compare", str(base), str(cand), "--fail-on-regression"]) == 0


def test_pair_accuracy_without_pair_ids_is_compared_by_value(tmp_path: Path) -> None:
    base = make_run(tmp_path, "base", {"p": TaskSpec([1.0] * 10, corpus={"pair_accuracy": 100.0},
                                                     primary="pair_accuracy")})
    cand = make_run(tmp_path, "cand", {"p": TaskSpec([1.0] * 10, corpus={"pair_accuracy": 90.0},
                                                     primary="pair_accuracy")})
    m = compare_runs(base, cand).tasks[0].metrics[0]
    assert m.test is None and "no per-sample scores" in (m.no_test or "")
