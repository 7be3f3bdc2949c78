"""`evalkit score`: recompute a finished run's metrics from its stored samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.core.results import RunRecord, read_run
from evalkit.core.store import SampleStore
from evalkit.core.types import SampleError
from evalkit.runner.records import _error_counts, _fail, _parse_into


def rescore(run_dir: Path, judge: Any = None, call_judge: bool = True, write: bool = False) -> RunRecord:
    """Recompute every task's metrics from the stored samples (``evalkit score``).

    Judged tasks: with ``call_judge`` the judge (``judge``, a JudgeConfig from --judge, else EVALKIT_JUDGE_*)
    reviews the answers again, failed judgements included (its cache answers repeats); without it (``score
    --check``) the judgements stored on the samples are the scores and no judge is called. A parser exception is
    recorded on its sample, as in a run; ``n_errors`` and ``errors_by_category`` are recounted. ``write``: append
    each record whose parse, scores, error or judgement changed to the samples file (the last record of a sample
    id wins; no line is rewritten)."""
    from evalkit.adapters import get_adapter
    from evalkit.tasks import get_task
    from evalkit.tasks.base import ParseContext

    record = read_run(run_dir)
    store = SampleStore(run_dir)
    adapter = get_adapter(record.model.family).bind(record.config.protocol, record.model.model_type)
    for name, result in record.tasks.items():
        task = get_task(name)
        records = store.records(name)
        before = {r.id: r.model_dump_json() for r in records}
        judged = hasattr(task, "judge_config")
        if not judged or call_judge:
            if judge is not None and judged:
                task.judge_config = judge
            ctx = ParseContext(box_format=adapter.box_format_for(record.model.model_type))
            todo = [r for r in records if r.output is not None and (r.error is None or r.error_category == "judge")]
            for rec in todo:
                rec.error = rec.error_category = None
            parsed = [rec for rec in todo if _parse_into(rec, task, adapter, ctx)]
            for rec, outcome in zip(parsed, task.score_records(parsed)):
                if isinstance(outcome, SampleError):
                    _fail(rec, outcome)
                else:
                    rec.scores = outcome
        result.metrics = task.aggregate(records)
        result.errors_by_category = _error_counts(records)
        result.n_errors = sum(result.errors_by_category.values())
        if write:
            store.append(name, [r for r in records if r.model_dump_json() != before[r.id]])
    return record
