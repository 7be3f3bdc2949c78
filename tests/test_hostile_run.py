"""Clean exits and honest files, end to end on the tiny LLaVA (issue 23): over-long prompts, user errors that used to
be internal errors, failed starts, a full disk, concurrent --resume, forged runs, a zero-row dataset."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from evalkit.cli import main
from evalkit.testing.hub_fixtures import write_fixture
from test_hostile import rewrite_split

VQA = "lmms-lab/VQAv2"
LONG_QUESTION = "what " * 3000  # ~3000 tokens; the tiny model's context is 512


def args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(model), "--tasks", "vqav2", "--data-dir", str(data), "--output", str(out),
            "--no-progress", "--max-error-rate", "1", "--batch-size", "2", "--limit", "4", *extra]


def runs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VQAv2 with an over-long question in its second row."""
    root = tmp_path_factory.mktemp("hostile-data")
    write_fixture(VQA, root, n=6, seed=0)

    def long_question(t: pa.Table) -> pa.Table:
        questions = t.column("question").to_pylist()
        questions[1] = LONG_QUESTION
        return t.set_column(t.schema.get_field_index("question"), "question", pa.array(questions, pa.string()))

    rewrite_split(root / VQA, long_question)
    return root


@pytest.fixture(scope="module")
def finished(tiny_llava: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    assert main(args(tiny_llava, data, out)) == 0
    return runs(out)[0]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines()]


# --- 2. a prompt longer than the context fails alone, before generation -----------------------------


def test_over_long_prompt_fails_that_sample_before_generation(finished: Path) -> None:
    recs = records(finished)
    failed = [r for r in recs if r["error"] is not None]
    assert len(recs) == 4 and len(failed) == 1
    assert failed[0]["error_category"] == "prompt_too_long" and "context is 512" in failed[0]["error"]
    assert failed[0]["output"] is None
    run = json.loads((finished / "run.json").read_text())
    assert run["tasks"]["vqav2_val"]["errors_by_category"] == {"prompt_too_long": 1}


# --- 9/10. user errors: exit 2, one line, no run folder ------------------------------------------------


@pytest.mark.parametrize("extra,message", [
    (("--device", "tpu9"), "--device 'tpu9'"),
    (("--dtype", "float3"), "--dtype 'float3'"),
])
def test_bad_options_exit_2_and_leave_no_folder(tiny_llava: Path, data: Path, tmp_path: Path, extra: tuple,
                                                message: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(args(tiny_llava, data, out, *extra)) == 2
    assert message in error_line(capsys)
    assert runs(out) == []


def test_output_that_is_a_file_exits_2(tiny_llava: Path, data: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").write_text("not a folder")
    assert main(args(tiny_llava, data, tmp_path / "out")) == 2
    assert "is a file" in error_line(capsys)


def test_read_only_output_exits_2(tiny_llava: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    def read_only(*a, **k):  # as on a read-only mount (chmod does not stop root, who runs these tests)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "out"
    assert main(args(tiny_llava, data, out)) == 2
    assert "Read-only file system" in error_line(capsys)
    assert runs(out) == []


def test_unloadable_or_remote_code_checkpoint_exits_2_without_a_folder(
        tiny_llava: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "remote"
    shutil.copytree(tiny_llava, model)
    config = json.loads((model / "config.json").read_text())
    config.update(model_type="evil_llava", auto_map={"AutoConfig": "configuration_evil.EvilConfig"})
    (model / "config.json").write_text(json.dumps(config))
    (model / "configuration_evil.py").write_text("raise SystemExit('remote code ran')\n")
    out = tmp_path / "out"
    assert main(args(model, data, out)) == 2
    line = error_line(capsys)
    assert "cannot load model" in line or "--trust-remote-code" in line
    assert runs(out) == []


def test_unreadable_parquet_and_empty_dataset_leave_no_folder(tiny_llava: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    write_fixture(VQA, root, n=4, seed=0)
    rewrite_split(root / VQA, lambda t: t.slice(0, 0))
    out = tmp_path / "out"
    assert main(args(tiny_llava, root, out)) == 2
    assert "holds no rows" in error_line(capsys)
    shard = next((root / VQA / "data").glob("validation-*.parquet"))
    shard.write_bytes(b"PAR1 this is not parquet PAR1")
    assert main(args(tiny_llava, root, out)) == 2
    assert str(shard) in error_line(capsys)
    assert runs(out) == []


# --- 9. a full disk ----------------------------------------------------------------------------------


def test_full_disk_at_start_exits_2_and_leaves_nothing(tiny_llava: Path, data: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.core import results

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results.os, "fsync", full)
    out = tmp_path / "out"
    assert main(args(tiny_llava, data, out)) == 2
    assert "No space left on device" in error_line(capsys)
    assert runs(out) == [] and list(out.rglob("*.tmp")) == []


def test_full_disk_mid_run_is_resumable_and_says_so(tiny_llava: Path, data: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, finished: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.core.store import SampleStore

    real = SampleStore.append
    calls = []

    def fills_up(self, task, recs):
        calls.append(len(recs))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, task, recs)

    monkeypatch.setattr(SampleStore, "append", fills_up)
    out = tmp_path / "out"
    assert main(args(tiny_llava, data, out)) == 2
    line = error_line(capsys)
    assert "No space left on device" in line and "--resume" in line
    [run_dir] = runs(out)
    assert json.loads((run_dir / "run.json").read_text())["status"] != "completed"
    monkeypatch.setattr(SampleStore, "append", real)
    assert main(args(tiny_llava, data, out, "--resume")) == 0
    assert runs(out) == [run_dir]
    assert sorted(r["id"] for r in records(run_dir)) == sorted(r["id"] for r in records(finished))


# --- 11. two processes resuming one folder --------------------------------------------------------------


def test_second_resume_of_a_locked_run_exits_2_naming_the_holder(tiny_llava: Path, data: Path, tmp_path: Path,
                                                                finished: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.core.store import RunLock

    out = tmp_path / "out"
    run_dir = out / finished.name
    shutil.copytree(finished, run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    run["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(run))
    held = RunLock(run_dir)  # as another evalkit process would hold it
    try:
        before = (run_dir / "samples" / "vqav2_val.jsonl").read_bytes()
        assert main(args(tiny_llava, data, out, "--resume")) == 2
        line = error_line(capsys)
        assert f"pid {os.getpid()}" in line and "in use" in line
        assert (run_dir / "samples" / "vqav2_val.jsonl").read_bytes() == before
    finally:
        held.release()


# --- 12. a forged run does not pass score --check -----------------------------------------------------------


def forge(run_dir: Path, edit) -> None:
    path = run_dir / "samples" / "vqav2_val.jsonl"
    recs = records(run_dir)
    edit(recs)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_score_check_catches_forged_targets_and_counts(finished: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean"
    shutil.copytree(finished, clean)
    assert main(["score", str(clean), "--check"]) == 0

    forged = tmp_path / "forged"
    shutil.copytree(finished, forged)

    def answer_what_was_said(recs: list[dict]) -> None:  # targets rewritten to the model's outputs: 100%
        for r in recs:
            if r["output"] is not None:
                r["target"] = [r["output"].strip()] * 10
    forge(forged, answer_what_was_said)
    assert main(["score", str(forged), "--write"]) == 0
    capsys.readouterr()
    assert main(["score", str(forged), "--check"]) == 1
    assert "stored target(s) differ from the dataset's" in capsys.readouterr().out

    dropped = tmp_path / "dropped"
    shutil.copytree(finished, dropped)
    forge(dropped, lambda recs: recs.remove(next(r for r in recs if r["error"] is not None)))
    assert main(["score", str(dropped), "--write"]) == 0
    capsys.readouterr()
    assert main(["score", str(dropped), "--check"]) == 1
    out = capsys.readouterr().out
    assert "run.json says n = 4, the stored samples give 3" in out and "have no stored record" in out
