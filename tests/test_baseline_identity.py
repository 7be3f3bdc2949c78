"""The committed baseline names the bundled model the same way on every machine: a stable name plus the
fingerprint of its weights, never the absolute path of the machine it was made on; and it is current (its task
versions are today's, so `compare` against it is allowed)."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.core.results import read_run
from evalkit.runner.models import REFERENCE_CHECKPOINT, resolve_model
from evalkit.tasks import get_task

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "reference"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_reference_model_resolves_to_a_stable_name_with_its_fingerprint() -> None:
    spec = resolve_model("reference")
    assert spec.checkpoint == REFERENCE_CHECKPOINT == "evalkit:reference_model"
    assert Path(spec.local_path).is_dir() and (Path(spec.local_path) / "config.json").is_file()
    assert spec.fingerprint() is not None and len(spec.fingerprint()) == 16


def test_committed_baseline_records_the_stable_name_and_fingerprint_and_no_path() -> None:
    record = read_run(BASELINE)
    assert record.model.checkpoint == REFERENCE_CHECKPOINT
    assert record.model.fingerprint == resolve_model("reference").fingerprint()
    raw = json.loads((BASELINE / "run.json").read_text())
    assert [s for s in _strings(raw) if s.startswith("/")] == []
    assert not (BASELINE / ".lock").exists()


def test_committed_baseline_is_of_todays_task_versions() -> None:
    record = read_run(BASELINE)
    assert {name: result.version for name, result in record.tasks.items()} == {
        name: get_task(name).version for name in record.tasks}
