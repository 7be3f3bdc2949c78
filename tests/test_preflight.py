"""A run whose scoring cannot work on this machine (captioning without Java) stops before the model loads,
with one line and exit 2, and leaves no run folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalkit.cli import main


def test_caption_task_without_java_fails_before_generating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    from evalkit.backends.hf import HfBackend

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "java" else real_which(name, *a, **k))
    loaded = []
    monkeypatch.setattr(HfBackend, "load", lambda self: loaded.append(1))
    code = main(["run", "--model", "reference", "--tasks", "shapes_caption", "--limit", "2", "--output",
                 str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "need Java" in err and err.count("\n") == 0
    assert loaded == [] and not list(tmp_path.rglob("run.json"))


def test_tasks_without_java_needs_still_run_without_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "java" else real_which(name, *a, **k))
    assert main(["run", "--model", "reference", "--tasks", "shapes_vqa", "--limit", "2", "--output", str(tmp_path),
                 "--no-progress"]) == 0
