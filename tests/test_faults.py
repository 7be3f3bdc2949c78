"""Nothing lost, nothing silent: SIGKILL + --resume, Ctrl-C, OOM, bad records, concurrent runs, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalkit.cli import main


def cli_args(tiny: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(tiny), "--tasks", "vqav2", "--data-dir", str(data), "--output", str(out),
            "--no-progress", "--max-error-rate", "1", *extra]


# The child slows each batch by 0.15 s so a kill lands mid-run however fast the machine is.
SLOW_CLI = (
    "import sys, time\n"
    "from evalkit.backends.hf import HfBackend\n"
    "real = HfBackend.generate\n"
    "def slow(self, prompts, settings):\n"
    "    time.sleep(0.15)\n"
    "    return real(self, prompts, settings)\n"
    "HfBackend.generate = slow\n"
    "from evalkit.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then never installs its KeyboardInterrupt
    # handler: under `make test &` the child would shrug off the Ctrl-C this file sends. Give it the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            preexec_fn=_default_sigint)


def samples_by_id(run_dir: Path) -> dict[str, dict]:
    out = {}
    for line in (run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["id"]] = rec
    return out


def wait_for_lines(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        files = list(out.glob("*/samples/vqav2_val.jsonl"))
        if files and len(files[0].read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before {n} samples were stored: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    pytest.fail(f"no {n} stored samples after {timeout}s")


@pytest.fixture(scope="module")
def uninterrupted(tiny_llava: Path, vqav2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    assert main(cli_args(tiny_llava, vqav2_dir, out, "--batch-size", "2")) == 0
    return next(out.iterdir())


@pytest.mark.parametrize("kill_after", [1, 9, 19])
def test_sigkill_then_resume_equals_uninterrupted(kill_after: int, uninterrupted: Path, tiny_llava: Path,
                                                   vqav2_dir: Path, tmp_path: Path) -> None:
    proc = spawn(cli_args(tiny_llava, vqav2_dir, tmp_path, "--batch-size", "2"))
    wait_for_lines(tmp_path, kill_after, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = next(tmp_path.iterdir())
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"  # killed: no chance to write
    stored = len((run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines())
    assert kill_after <= stored < 24
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--batch-size", "2", "--resume")) == 0
    assert [p.name for p in tmp_path.iterdir()] == [run_dir.name]  # continued, not a new run
    lines = (run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines()
    assert len(lines) == 24  # nothing lost, nothing duplicated
    assert samples_by_id(run_dir) == samples_by_id(uninterrupted)
    got = json.loads((run_dir / "run.json").read_text())
    want = json.loads((uninterrupted / "run.json").read_text())
    assert got["status"] == "completed"
    assert got["tasks"]["vqav2_val"]["metrics"] == want["tasks"]["vqav2_val"]["metrics"]
    assert got["tasks"]["vqav2_val"]["n_errors"] == want["tasks"]["vqav2_val"]["n_errors"] == 2


def test_ctrl_c_writes_interrupted_and_exits_130(tiny_llava: Path, vqav2_dir: Path, tmp_path: Path) -> None:
    proc = spawn(cli_args(tiny_llava, vqav2_dir, tmp_path, "--batch-size", "1"))
    wait_for_lines(tmp_path, 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    run_dir = next(tmp_path.iterdir())
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "interrupted"
    partial = rec["tasks"]["vqav2_val"]
    stored = len((run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines())
    assert partial["n"] == stored and 3 <= stored < 24
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--resume")) == 0
    assert json.loads((run_dir / "run.json").read_text())["tasks"]["vqav2_val"]["n"] == 24


def test_injected_oom_halves_the_batch(monkeypatch: pytest.MonkeyPatch, uninterrupted: Path, tiny_llava: Path,
                                       vqav2_dir: Path, tmp_path: Path) -> None:
    import torch

    from evalkit.backends.hf import HfBackend

    real = HfBackend.generate

    def generate(self, prompts, settings):  # type: ignore[no-untyped-def]
        if len(prompts) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(self, prompts, settings)

    monkeypatch.setattr(HfBackend, "generate", generate)
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--batch-size", "8")) == 0
    run_dir = next(tmp_path.iterdir())
    task = json.loads((run_dir / "run.json").read_text())["tasks"]["vqav2_val"]
    assert task["generation"]["batch_size"] == 2
    assert any("batch size reduced to 2" in note for note in task["notes"])
    assert samples_by_id(run_dir) == samples_by_id(uninterrupted)


def test_generation_exception_is_recorded_per_sample(monkeypatch: pytest.MonkeyPatch, tiny_llava: Path,
                                                     vqav2_dir: Path, tmp_path: Path) -> None:
    from evalkit.backends.hf import HfBackend

    real = HfBackend.generate

    def generate(self, prompts, settings):  # type: ignore[no-untyped-def]
        if any("color" in p.text.lower() for p in prompts):
            raise RuntimeError("kernel failure (injected)")
        return real(self, prompts, settings)

    monkeypatch.setattr(HfBackend, "generate", generate)
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--batch-size", "4", "--max-error-rate", "0")) == 1
    run_dir = next(tmp_path.iterdir())
    recs = samples_by_id(run_dir).values()
    failed = [r for r in recs if r["error_category"] == "generation"]
    assert failed and all("kernel failure" in r["error"] and r["scores"] == {} for r in failed)
    assert all("color" in r["prompt"].lower() for r in failed)
    task = json.loads((run_dir / "run.json").read_text())["tasks"]["vqav2_val"]
    assert task["errors_by_category"]["generation"] == len(failed)
    assert task["metrics"]["accuracy"]["n"] == 24 - task["n_errors"]


def test_missing_fields_and_corrupt_images_are_counted(tiny_llava: Path, tmp_path: Path) -> None:
    from evalkit.testing.hub_fixtures import write_fixture

    root = write_fixture("lmms-lab/VQAv2", tmp_path / "data", n=8, seed=1, corrupt=1)
    shard = sorted((root / "data").glob("validation-*.parquet"))[0]
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["question"] = None  # a record missing its question
    rows[1]["answers"] = None  # and one missing its answers: recorded, not scored as 0
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    out = tmp_path / "out"
    assert main(cli_args(tiny_llava, tmp_path / "data", out, "--max-error-rate", "0")) == 1
    task = json.loads((next(out.iterdir()) / "run.json").read_text())["tasks"]["vqav2_val"]
    assert task["errors_by_category"].get("bad_record", 0) >= 1
    assert task["errors_by_category"].get("image_decode", 0) >= 1
    assert task["metrics"]["accuracy"]["n"] < task["n"]


def test_concurrent_runs_into_one_folder_do_not_collide(tiny_llava: Path, vqav2_dir: Path, tmp_path: Path) -> None:
    procs = [spawn(cli_args(tiny_llava, vqav2_dir, tmp_path, "--limit", "6")) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=180)
        assert p.returncode == 0
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 2
    for run_dir in runs:
        assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
        assert len((run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines()) == 6


def test_secrets_in_the_environment_never_reach_a_file(tiny_llava: Path, vqav2_dir: Path, tmp_path: Path) -> None:
    secret = "sk-evalkit-test-secret-0123456789"
    proc = spawn(cli_args(tiny_llava, vqav2_dir, tmp_path, "--limit", "4", "--seed", "0"),
                 env={"OPENAI_API_KEY": secret, "HF_TOKEN": secret})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert secret not in out + err
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f
