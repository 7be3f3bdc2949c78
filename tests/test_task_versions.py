"""A task's version is recorded in run.json, is part of the --resume key, and compare refuses to compare
runs of different task definitions unless asked to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.core.results import read_run
from evalkit.tasks import TASKS, get_task
from result_factory import TaskSpec, make_run


def test_every_task_has_a_positive_version() -> None:
    for name in TASKS.names():
        assert isinstance(get_task(name).version, int) and get_task(name).version >= 1, name


def test_compare_refuses_runs_of_different_task_versions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = make_run(tmp_path, "base", {"vqav2_val": TaskSpec([1, 0, 1, 1], version=1)})
    cand = make_run(tmp_path, "cand", {"vqav2_val": TaskSpec([1, 0, 1, 1], version=2)})
    assert main(["compare", str(base), str(cand)]) == 2
    assert "task definition changed (version 1 vs 2" in capsys.readouterr().err
    assert main(["compare", str(base), str(cand), "--allow-dataset-change"]) == 0
    assert "task version differs (1 vs 2)" in capsys.readouterr().out


def test_same_versions_compare_without_a_note(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = make_run(tmp_path, "base", {"vqav2_val": TaskSpec([1, 0, 1, 1], version=3)})
    cand = make_run(tmp_path, "cand", {"vqav2_val": TaskSpec([1, 0, 1, 1], version=3)})
    assert main(["compare", str(base), str(cand)]) == 0
    assert "task version differs" not in capsys.readouterr().out


@pytest.mark.slow
def test_version_recorded_and_resume_refuses_another_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.runner import Runner, RunOptions

    opts = RunOptions(model="reference", tasks=["shapes_vqa"], limit=2, output=tmp_path, progress=False)
    record, run_dir = Runner(opts).run()
    version = get_task("shapes_vqa").version
    assert record.tasks["shapes_vqa"].version == version
    assert record.config.task_versions == {"shapes_vqa": version}
    # Make the run look unfinished, then change the task's definition.
    data = json.loads((run_dir / "run.json").read_text())
    data["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(data))
    factory = TASKS.get("shapes_vqa")

    def bumped():  # the same task at the next version
        task = factory()
        task.version = version + 1
        return task

    monkeypatch.setitem(TASKS._loaded, "shapes_vqa", bumped)
    with pytest.raises(UsageError, match="task_versions"):
        Runner(RunOptions(model="reference", tasks=["shapes_vqa"], limit=2, output=tmp_path, resume=True,
                          progress=False)).start()
    assert read_run(run_dir).status == "interrupted"
