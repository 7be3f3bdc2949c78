"""Helpers for the benchmark task tests (tests/test_tasks_*.py): hub-schema fixtures and `evalkit run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.cli import main
from evalkit.testing.fixture_specs_tasks import write_fixture


def write_data(root: Path, names: list[str], n: int = 12, corrupt: int = 1) -> Path:
    """A --data-dir holding the hub datasets ``names`` (same seed, ``corrupt`` bad images per split)."""
    for name in names:
        write_fixture(name, root, n=n, seed=0, corrupt=corrupt)
    return root


def run_tasks(model: Path, data: Path, out: Path, tasks: str, *extra: str) -> tuple[int, Path]:
    """`evalkit run` of ``tasks`` on the tiny model; (exit code, the run folder)."""
    code = main(["run", "--model", str(model), "--tasks", tasks, "--data-dir", str(data), "--output", str(out),
                 "--no-progress", "--batch-size", "4", *extra])
    runs = sorted(p for p in out.iterdir() if (p / "run.json").exists())
    return code, runs[-1]


def run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def sample_lines(run_dir: Path, task: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples" / f"{task}.jsonl").read_text().splitlines()]


def mean_x100(values: list[float]) -> float:
    return 100 * sum(values) / len(values)
