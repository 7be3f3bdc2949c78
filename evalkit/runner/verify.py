"""`evalkit score --check` beyond the metrics: are run.json's counts those of its stored samples, and are the stored
samples those of the dataset?

Recomputing metrics from ``samples/<task>.jsonl`` proves only that run.json agrees with the stored records: edit
the records, run ``score --write``, and ``--check`` passes. So ``--check`` also verifies

- per task, run.json's ``n``, ``n_errors``, ``n_empty`` and ``errors_by_category`` against the stored records;
- where the dataset can be opened (the run's recorded ``--data-dir``, else the hub or its local cache): the
  dataset's content hash against the recorded one, the stored sample ids against the dataset's (none missing,
  none extra) and each stored target against the dataset's.

Outputs cannot be verified without running the model again; ``evalkit run`` on the same data does that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError
from evalkit.core.results import RunRecord, SampleRecord, TaskResult, read_samples

_SHOWN = 3  # ids quoted per problem


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)  # each makes --check fail
    notes: list[str] = field(default_factory=list)  # what could not be checked


def _ids(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in sorted(ids)[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def check_counts(name: str, result: TaskResult, records: list[SampleRecord]) -> list[str]:
    """run.json's counts of a task against its stored records."""
    errors: dict[str, int] = {}
    for r in records:
        if r.error is not None:
            errors[r.error_category or "unknown"] = errors.get(r.error_category or "unknown", 0) + 1
    empty = sum(1 for r in records if r.error is None and not (r.output or "").strip())
    found = {"n": len(records), "n_errors": sum(errors.values()), "n_empty": empty, "errors_by_category": errors}
    stated = {"n": result.n, "n_errors": result.n_errors, "n_empty": result.n_empty,
              "errors_by_category": result.errors_by_category}
    return [f"{name}: run.json says {key} = {stated[key]}, the stored samples give {found[key]}"
            for key in found if stated[key] != found[key]]


def check_dataset(name: str, task: Any, record: RunRecord, records: list[SampleRecord]) -> tuple[list[str], str | None]:
    """The stored ids and targets of a task against its dataset; (problems, or a note when it cannot be read)."""
    from evalkit.tasks.base import TaskContext

    cfg = record.config
    data_dir = Path(cfg.data_dir) if cfg.data_dir else None
    if data_dir is not None and not data_dir.is_dir():
        return [], f"{name}: dataset not checked: the recorded --data-dir {data_dir} is not here"
    try:
        data = task.load(TaskContext(data_dir=data_dir, limit=cfg.limit, seed=cfg.seed))
        expected = {s.id: _canonical(s.target) for s in data.samples}
    except UsageError as exc:
        return [], f"{name}: dataset not checked: {exc}"
    problems = []
    stated = record.tasks[name].dataset.content_hash
    if stated and data.dataset.content_hash and stated != data.dataset.content_hash:
        problems.append(f"{name}: the dataset's content hash is {data.dataset.content_hash}, run.json records "
                        f"{stated}")
    stored = {r.id: r for r in records}
    missing = [i for i in expected if i not in stored]
    extra = [i for i in stored if i not in expected and not task.multi_turn]  # later turns are not in the data
    wrong = [i for i in expected if i in stored and _canonical(stored[i].target) != expected[i]]
    interrupted = record.status != "completed"
    if missing and not interrupted:
        problems.append(f"{name}: {len(missing)} dataset sample(s) have no stored record: {_ids(missing)}")
    if extra:
        problems.append(f"{name}: {len(extra)} stored record(s) are not in the dataset: {_ids(extra)}")
    if wrong:
        problems.append(f"{name}: {len(wrong)} stored target(s) differ from the dataset's: {_ids(wrong)}")
    return problems, None


def verify_run(run_dir: Path, record: RunRecord, with_dataset: bool = True) -> Verification:
    """Every check above, over every task of the run (``record``: its run.json as stored)."""
    from evalkit.tasks import get_task

    out = Verification()
    for name, result in record.tasks.items():
        records = read_samples(run_dir, name)
        out.problems += check_counts(name, result, records)
        if with_dataset:
            problems, note = check_dataset(name, get_task(name), record, records)
            out.problems += problems
            if note:
                out.notes.append(note)
    return out
