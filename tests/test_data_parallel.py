"""--data-parallel on a local Ray cluster: same samples and metrics as one process, a killed replica
costs nothing but time, and --resume works across replica counts.

The reference is a single-process run (what --data-parallel 1 runs). Replicas use 1 CPU (1 torch
thread) each on a 2-CPU local cluster, so the machine is never oversubscribed.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.core.types import Sample, SampleError

TASK = "vqav2_val"


def cli_args(tiny: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(tiny), "--tasks", "vqav2", "--data-dir", str(data), "--output", str(out),
            "--no-progress", "--max-error-rate", "1", "--batch-size", "2", *extra]


def samples_by_id(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "samples" / f"{TASK}.jsonl").read_text().splitlines()
    out = {rec["id"]: rec for rec in map(json.loads, lines)}
    assert len(out) == len(lines), "a sample was stored twice"
    return out


def run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def assert_same_results(run_dir: Path, reference: Path) -> None:
    got, want = samples_by_id(run_dir), samples_by_id(reference)
    assert sorted(got) == sorted(want)
    for sid in want:  # every field of every sample: prompt, output, parsed, scores, token counts, errors
        assert got[sid] == want[sid], sid
    new, old = run_json(run_dir)["tasks"][TASK], run_json(reference)["tasks"][TASK]
    assert new["metrics"] == old["metrics"]
    counts = lambda t: (t["n"], t["n_errors"], t["errors_by_category"])  # noqa: E731
    assert counts(new) == counts(old) == (24, 2, {"image_decode": 2})


# -- without Ray, and pure logic -------------------------------------------------------------------------
def test_without_ray_the_flag_names_the_install(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                tiny_llava: Path, vqav2_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--data-parallel", "2")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'evalkit[ray]'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # refused before any run folder was made


def test_work_units_are_the_single_process_windows_and_requeue_first() -> None:
    from evalkit.interop.distributed import WorkUnits

    units = WorkUnits(iter([Sample(id=str(i), question="q") for i in range(10)]), size=4)
    first = units.take()
    assert [s.id for s in first] == ["0", "1", "2", "3"]
    units.requeue(first[2:])  # a dead replica had finished "0" and "1"
    assert [s.id for s in units.take()] == ["2", "3"]
    assert [[s.id for s in u] for u in (units.take(), units.take())] == [["4", "5", "6", "7"], ["8", "9"]]
    assert units.take() is None
    units.requeue([])
    assert units.take() is None and units.requeued == 0


def test_samples_with_a_load_error_cross_process_boundaries() -> None:
    import evalkit.interop.distributed  # noqa: F401  (registers the picklers)

    sample = Sample(id="7", question="q", load_error=SampleError("bad_record", "no 'answers' field"))
    picklers: list[Any] = [pickle]
    try:
        import ray.cloudpickle  # what Ray serializes task arguments with

        picklers.append(ray.cloudpickle)
    except ImportError:
        pass
    for pickler in picklers:
        back = pickler.loads(pickler.dumps(sample))
        assert (back.load_error.category, back.load_error.message) == ("bad_record", "no 'answers' field")


# -- on a local Ray cluster ---------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """In-process runs use 1 thread like each replica: 2 threads on 2 shared cores can be 20x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tiny_llava: Path, vqav2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single")
    assert main(cli_args(tiny_llava, vqav2_dir, out)) == 0
    return next(out.iterdir())


def test_two_replicas_give_the_single_process_results(ray_cluster: Any, reference: Path, tiny_llava: Path,
                                                      vqav2_dir: Path, tmp_path: Path) -> None:
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--data-parallel", "2")) == 0
    run_dir = next(tmp_path.iterdir())
    assert_same_results(run_dir, reference)
    rec = run_json(run_dir)
    assert rec["status"] == "completed" and rec["config"]["data_parallel"] == 2
    assert rec["environment"]["ray"] == ray_cluster.__version__
    assert rec["environment"]["device"] == "2 x cpu (Ray data-parallel)"
    # 24 samples in windows of 8 (batch 2 x 4); two units go to replica 0, one to replica 1.
    shares = rec["tasks"][TASK]["replicas"]
    assert [(r["replica"], r["n"], r["restarts"]) for r in shares] == [(0, 16, 0), (1, 8, 0)]
    for r in shares:
        assert r["samples_per_s"] > 0 and r["generated_tokens_per_s"] > 0 and r["peak_rss_mb"] > 100 and r["node"]
    agg = rec["tasks"][TASK]["telemetry"]
    assert agg["n_generated_tokens"] == sum(r["n_generated_tokens"] for r in shares)
    assert agg["n_generated_tokens"] == sum(s["n_generated_tokens"] or 0 for s in samples_by_id(run_dir).values())
    assert agg["peak_rss_mb"] > sum(r["peak_rss_mb"] for r in shares)  # replicas + the driver
    assert [r["load_s"] > 0 for r in rec["replicas"]] == [True, True]
    assert main(["score", str(run_dir), "--check"]) == 0
    assert_resources_released(ray_cluster)


class SlowReplica:
    """Replica whose batches take 0.1 s longer, so a kill surely lands with samples still to do."""

    @staticmethod
    def make() -> Any:
        from evalkit.interop.distributed import Replica

        class Slow(Replica):
            def run_unit(self, task_name: str, samples: list[Sample]) -> Iterator[Any]:
                for out in super().run_unit(task_name, samples):
                    time.sleep(0.1)
                    yield out

        return Slow


def test_a_killed_replica_is_restarted_and_finished_samples_are_not_redone(
        ray_cluster: Any, monkeypatch: pytest.MonkeyPatch, reference: Path, tiny_llava: Path, vqav2_dir: Path,
        tmp_path: Path) -> None:
    import evalkit.interop.distributed as dist

    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Slow is defined here
    monkeypatch.setattr(dist, "_actor_class", lambda: ray_cluster.remote(max_restarts=0)(SlowReplica.make()))
    received: set[str] = set()
    redone: list[str] = []
    sent: list[str] = []
    killed: list[int] = []
    real_account, real_submit = dist.ReplicaPool.account, dist.ReplicaPool.submit

    def account(self: Any, slot: Any, task_name: str, out: Any) -> None:
        real_account(self, slot, task_name, out)
        received.update(r.id for r in out.records)
        if slot.index == 1 and not killed:  # replica 1's first batch is in: SIGKILL its process
            killed.append(slot.pid)
            os.kill(slot.pid, signal.SIGKILL)

    def submit(self: Any, slot: Any, task_name: str, unit: list[Sample]) -> Any:
        redone.extend(s.id for s in unit if s.id in received)
        sent.extend(s.id for s in unit)
        return real_submit(self, slot, task_name, unit)

    monkeypatch.setattr(dist.ReplicaPool, "account", account)
    monkeypatch.setattr(dist.ReplicaPool, "submit", submit)
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--data-parallel", "2")) == 0
    assert killed and redone == []
    assert len(sent) > len(set(sent)) == 24  # the dead replica's unfinished samples were sent again
    run_dir = next(tmp_path.iterdir())
    assert_same_results(run_dir, reference)
    rec = run_json(run_dir)
    assert [r["restarts"] for r in rec["replicas"]] == [0, 1]
    assert [r["restarts"] for r in rec["tasks"][TASK]["replicas"]] == [0, 1]
    assert sum(r["n"] for r in rec["tasks"][TASK]["replicas"]) == 24  # each sample came back once


def test_an_interrupted_two_replica_run_resumes_in_one_process(
        ray_cluster: Any, monkeypatch: pytest.MonkeyPatch, reference: Path, tiny_llava: Path, vqav2_dir: Path,
        tmp_path: Path) -> None:
    from evalkit.core.store import SampleStore

    real_append = SampleStore.append

    def append_then_ctrl_c(self: SampleStore, task: str, records: list) -> None:
        real_append(self, task, records)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(SampleStore, "append", append_then_ctrl_c)
        assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--data-parallel", "2")) == 130
    run_dir = next(tmp_path.iterdir())
    rec = run_json(run_dir)
    stored = len(samples_by_id(run_dir))
    assert rec["status"] == "interrupted" and rec["tasks"][TASK]["n"] == stored and 1 <= stored <= 2  # one batch
    assert rec["config"]["data_parallel"] == 2
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--resume")) == 0
    assert [p.name for p in tmp_path.iterdir()] == [run_dir.name]
    assert_same_results(run_dir, reference)
    rec = run_json(run_dir)
    assert rec["status"] == "completed" and rec["config"]["data_parallel"] == 1 and rec["replicas"] is None


def test_a_cut_single_process_run_resumes_on_two_replicas(ray_cluster: Any, reference: Path, tiny_llava: Path,
                                                          vqav2_dir: Path, tmp_path: Path) -> None:
    cut = tmp_path / reference.name
    shutil.copytree(reference, cut)
    store = cut / "samples" / f"{TASK}.jsonl"
    store.write_text("\n".join(store.read_text().splitlines()[:10]) + "\n" + '{"id": "torn')
    rec = run_json(cut)
    rec["status"], rec["tasks"] = "interrupted", {}
    (cut / "run.json").write_text(json.dumps(rec))
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, "--data-parallel", "2", "--resume")) == 0
    assert_same_results(cut, reference)
    shares = run_json(cut)["tasks"][TASK]["replicas"]
    assert sum(r["n"] for r in shares) == 14  # only the 14 missing samples were generated


@pytest.mark.parametrize("extra, message", [
    (["--data-parallel", "3"], "--data-parallel 3 needs 3 CPUs (1 per replica); the Ray cluster has 2"),
    (["--data-parallel", "2", "--device", "cuda"], "--device cuda: the Ray cluster has no GPUs"),
    (["--data-parallel", "2", "--dtype", "float7"], "--dtype 'float7'"),  # raised inside the replicas
])
def test_usage_errors_end_in_one_line_and_exit_2(ray_cluster: Any, capsys: pytest.CaptureFixture, extra: list[str],
                                                 message: str, tiny_llava: Path, vqav2_dir: Path,
                                                 tmp_path: Path) -> None:
    assert main(cli_args(tiny_llava, vqav2_dir, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and "Traceback" not in err
    # A failed start leaves no run folder that --resume or leaderboard would pick up.
    assert not list(tmp_path.rglob("run.json"))
    assert_resources_released(ray_cluster)


def assert_resources_released(ray: Any) -> None:
    """The run's replicas and placement group are gone: the cluster's 2 CPUs are free again."""
    deadline = time.time() + 10
    while ray.available_resources().get("CPU", 0) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2
