"""Run-level accounting: --resume refuses data whose content changed under the same path, and each task's
peak_rss_mb is its own peak, not the run's so far. Served model (local fake OpenAI server): no weights."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from openai_server import FakeOpenAI

from evalkit.cli import main
from evalkit.testing.fixture_specs_tasks import write_fixture


def run(data: Path, out: Path, url: str, tasks: str, *extra: str) -> int:
    return main(["run", "--model", "openai", "--backend", "openai", "--tasks", tasks, "--data-dir", str(data),
                 "--output", str(out), "--no-progress", "--limit", "4", "--max-error-rate", "1",
                 "--backend-args", f"base_url={url},retry_base_s=0.01,retry_max_s=0.02", *extra])


def the_run(out: Path) -> Path:
    [run_json] = out.glob("*/run.json")
    return run_json.parent


def test_resume_refuses_a_dataset_whose_content_changed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    write_fixture("lmms-lab/OK-VQA", data, n=6, seed=0, corrupt=0)
    with FakeOpenAI(reply=lambda body: "yes") as server:
        assert run(data, out, server.url, "okvqa") == 0
        run_dir = the_run(out)
        record = json.loads((run_dir / "run.json").read_text())
        record["status"] = "interrupted"
        (run_dir / "run.json").write_text(json.dumps(record))
        write_fixture("lmms-lab/OK-VQA", data, n=6, seed=1, corrupt=0)  # same path, other content
        capsys.readouterr()
        assert run(data, out, server.url, "okvqa", "--resume") == 2
        assert "dataset content of okvqa_val" in capsys.readouterr().err
        write_fixture("lmms-lab/OK-VQA", data, n=6, seed=0, corrupt=0)  # the original content again
        assert run(data, out, server.url, "okvqa", "--resume") == 0


def test_each_task_reports_its_own_peak_rss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    for name in ("lmms-lab/OK-VQA", "lmms-lab/textvqa"):
        write_fixture(name, data, n=4, seed=0, corrupt=0)
    from evalkit.tasks.vqa import VQATask

    original = VQATask.finalize

    def finalize(self, records, run_dir):  # noqa: ANN001 - the first task holds 400 MB for a moment
        if self.name == "okvqa_val":
            block = bytearray(400 << 20)
            block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page
            time.sleep(0.5)  # the sampler runs every 0.1 s
            del block
        return original(self, records, run_dir)

    monkeypatch.setattr(VQATask, "finalize", finalize)
    with FakeOpenAI(reply=lambda body: "yes") as server:
        assert run(data, out, server.url, "okvqa,textvqa") == 0
    tasks = json.loads((the_run(out) / "run.json").read_text())["tasks"]
    first, second = tasks["okvqa_val"]["telemetry"]["peak_rss_mb"], tasks["textvqa_val"]["telemetry"]["peak_rss_mb"]
    assert first - second > 250, (first, second)
