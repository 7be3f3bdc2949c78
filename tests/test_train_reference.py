"""scripts/train_reference.py: two data-parallel processes take the same steps as one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_reference.py"


def _train(out: Path, procs: int, lr: str = "1e-2") -> dict[str, "torch.Tensor"]:
    # a high lr, so that four steps move the weights far more than float summation order can
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--steps", "4", "--stage1-steps", "4", "--lr", lr,
           "--no-eval", "--threads", "2", "--procs", str(procs)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{procs} process(es)" in done.stdout
    return load_file(str(out / "model.safetensors"))


def test_two_processes_train_the_same_model_as_one(tmp_path: Path) -> None:
    frozen = _train(tmp_path / "frozen", 1, lr="0")  # stage 2 at lr 0: the language side as initialised
    one, two = _train(tmp_path / "one", 1), _train(tmp_path / "two", 2)
    assert one.keys() == two.keys() == frozen.keys()
    for part in ("language_model.", "multi_modal_projector."):  # stage 2 moved them
        moved = max(float((one[k] - frozen[k]).abs().max()) for k in one if k.startswith(part))
        assert moved > 1e-3, part
    for key in one:
        # the same global batches and averaged gradients: equal up to float summation order
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
