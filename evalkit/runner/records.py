"""Helpers on stored sample records shared by the pipeline and rescoring."""

from __future__ import annotations

import hashlib
from typing import Any

from evalkit.core.results import SampleRecord
from evalkit.core.types import Prompt, Sample, SampleError


def prompt_hash(prompt: Prompt, sample: Sample) -> str:
    h = hashlib.sha256(prompt.text.encode())
    for ref in sample.images:
        h.update(ref.digest().encode())
    return h.hexdigest()[:16]


def _fail(rec: SampleRecord, error: SampleError) -> None:
    rec.error, rec.error_category, rec.scores = error.message, error.category, {}


def _parse_into(rec: SampleRecord, task: Any, adapter: Any, ctx: Any) -> bool:
    """Parse ``rec.output`` into ``rec.parsed``; False when the parser raised, which is recorded on the sample
    (category ``scoring``): a parser bug must not kill a long run or a rescore."""
    try:
        rec.parsed = task.parse(adapter.parse(rec.output or "", kind=task.kind), rec.metadata, ctx)
        return True
    except Exception as exc:
        _fail(rec, SampleError("scoring", f"{type(exc).__name__}: {exc}"))
        return False


def _error_counts(records: list[SampleRecord]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for r in records:
        if r.error is not None:
            errors[r.error_category or "unknown"] = errors.get(r.error_category or "unknown", 0) + 1
    return errors
