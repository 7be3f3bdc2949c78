"""The bundled reference model: its targets hold through `evalkit run`, a damaged copy falls to chance,
and `evalkit selftest` agrees with the committed baseline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.runner.models import reference_path

TARGETS = {  # task -> (metric, minimum on the x100 scale); issue: the embedded default
    "shapes_vqa": ("accuracy", 80.0),
    "shapes_grounding": ("acc@0.5", 50.0),
    "shapes_pairs": ("pair_accuracy", 50.0),
    "shapes_caption": ("cider", 50.0),
}


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ref")
    assert main(["run", "--model", "reference", "--tasks", "shapes", "--batch-size", "32", "--output", str(out),
                 "--no-progress"]) == 0
    return json.loads((next(out.iterdir()) / "run.json").read_text())


@pytest.mark.parametrize("task", sorted(TARGETS))
def test_reference_model_meets_its_target(suite_run: dict, task: str) -> None:
    metric, minimum = TARGETS[task]
    result = suite_run["tasks"][task]
    assert result["n_errors"] == 0
    assert result["metrics"][metric]["value"] >= minimum, result["metrics"]


def test_run_equals_committed_baseline(suite_run: dict) -> None:
    baseline = json.loads((Path(__file__).parents[1] / "results" / "baselines" / "reference" / "run.json").read_text())
    for task, result in baseline["tasks"].items():
        assert suite_run["tasks"][task]["metrics"] == result["metrics"], task


def test_damaged_projector_scores_near_chance(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    damaged = tmp_path / "damaged"
    shutil.copytree(reference_path(), damaged, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    weights = load_file(str(damaged / "model.safetensors"))
    zeroed = [k for k in weights if "multi_modal_projector" in k]
    assert zeroed
    for key in zeroed:
        weights[key] = weights[key] * 0
    save_file(weights, str(damaged / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "out"
    main(["run", "--model", str(damaged), "--tasks", "shapes_vqa", "--batch-size", "32", "--output", str(out),
          "--no-progress"])
    acc = json.loads((next(out.iterdir()) / "run.json").read_text())["tasks"]["shapes_vqa"]["metrics"]["accuracy"]
    # Blind, the best the model can do is answer priors: (yes/no, left/right ~50, colour ~20, shape ~33, count ~30: ~37 overall), far under 80.
    assert acc["value"] < 50.0, acc


def test_selftest_passes_on_hf(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--backends", "hf"]) == 0
    out = capsys.readouterr().out
    assert "all passed" in out
    # Off a terminal the table prints every cell in full (no "shapes_gr…" cut), one row per task.
    for task in ("shapes_vqa", "shapes_caption", "shapes_grounding", "shapes_pairs"):
        assert f"| {task} " in out, out
