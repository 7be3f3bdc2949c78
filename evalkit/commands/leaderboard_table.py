"""The leaderboard's data: one Entry per run found under a folder, the task columns, and the formatted columns
that every output (terminal, Markdown, CSV, HTML) renders. No output format lives here."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.core.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.core.results import MetricValue, RunRecord


@dataclass(frozen=True)
class TaskColumn:
    """A task shown as a column, with the primary metric its runs report."""

    task: str
    metric: str

    @property
    def key(self) -> str:
        return f"task:{self.task}"


@dataclass
class Entry:
    """One run: the folder it was read from (relative to the results folder) and its record."""

    run_dir: Path
    relpath: str
    record: RunRecord

    @property
    def model(self) -> str:
        return self.record.model.name

    @property
    def checkpoint(self) -> str:
        m = self.record.model
        return f"{m.checkpoint}@{m.revision}" if m.revision else m.checkpoint

    @property
    def date(self) -> str:
        """created_at as 'YYYY-MM-DD HH:MM' (the stored ISO string, untouched beyond that)."""
        return self.record.created_at.replace("T", " ")[:16]

    @property
    def complete(self) -> bool:
        return self.record.status == "completed"

    @property
    def memory(self) -> tuple[float | None, str]:
        """(peak MB, 'GPU' or 'RSS'): GPU memory where the run had a GPU, else the process RSS."""
        tel = self.record.telemetry
        if tel.peak_gpu_memory_mb is not None:
            return tel.peak_gpu_memory_mb, "GPU"
        return tel.peak_rss_mb, "RSS"

    def score(self, column: TaskColumn) -> MetricValue | None:
        result = self.record.tasks.get(column.task)
        return None if result is None else result.metrics.get(column.metric)


@dataclass
class Leaderboard:
    """The runs found under ``root`` (ordered), the task columns, and files that could not be read."""

    root: Path
    entries: list[Entry]
    columns: list[TaskColumn]
    skipped: list[str] = field(default_factory=list)

    def protocol_note(self) -> str | None:
        """A warning when the runs used different prompt protocols (their scores are not comparable)."""
        from collections import Counter

        counts = Counter(e.record.config.protocol for e in self.entries)
        if len(counts) < 2:
            return None
        listed = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
        return (f"runs use different prompt protocols ({listed} runs): scores of different protocols are not "
                f"comparable (see the protocol column, docs/protocols.md)")


# -- discovery ----------------------------------------------------------------------------------------

def find_runs(root: Path) -> tuple[list[Entry], list[str]]:
    """Every folder under ``root`` (itself included) holding a run.json, and every lmms-eval *_results.json
    (one run each, evalkit.interop.lmms_results); unreadable ones are reported as 'path: reason' in the second list
    instead of stopping the whole leaderboard."""
    from evalkit.interop.lmms_results import RESULTS_SUFFIX, read_lmms_run
    from evalkit.core.results import read_run

    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; pass the folder that holds your run folders (e.g. results/)")
    entries: list[Entry] = []
    skipped: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if "run.json" not in files:
            for file in (Path(folder) / f for f in sorted(files) if f.endswith(RESULTS_SUFFIX)):
                try:
                    entries.append(Entry(file.parent, file.relative_to(root).as_posix(), read_lmms_run(file)))
                except UsageError as exc:
                    skipped.append(f"{file}: {exc}")
            continue
        dirs[:] = []  # a run folder holds samples/, never other runs
        path = Path(folder)
        try:
            record = read_run(path)
        except UsageError as exc:
            skipped.append(f"{path}: {exc}")
            continue
        entries.append(Entry(path, path.relative_to(root).as_posix() or ".", record))
    return entries, skipped


def build_leaderboard(root: Path, tasks: tuple[str, ...] = ()) -> Leaderboard:
    """Read every run under ``root``; ``tasks`` keeps only those task columns (and runs with one of them)."""
    entries, skipped = find_runs(root)
    if not entries:
        extra = f" ({len(skipped)} unreadable: {skipped[0]})" if skipped else ""
        raise UsageError(f"no run.json found under {root}{extra}; run `evalkit run ... --output {root}` first")
    primary: dict[str, str] = {}
    for e in entries:
        for name, result in e.record.tasks.items():
            primary.setdefault(name, result.primary_metric)
    if tasks:
        unknown = [t for t in tasks if t not in primary]
        if unknown:
            raise UsageError(f"--tasks {', '.join(unknown)}: no run under {root} evaluated it; tasks found: "
                             f"{', '.join(sorted(primary))}")
        names = list(dict.fromkeys(tasks))
        entries = [e for e in entries if any(t in e.record.tasks for t in names)]
    else:
        names = sorted(primary)
    columns = [TaskColumn(t, primary[t]) for t in names]
    # stable sorts, least significant first: run id, then newest first, then best first (missing last)
    entries.sort(key=lambda e: e.record.run_id)
    entries.sort(key=lambda e: e.record.created_at, reverse=True)
    if columns:
        first = columns[0]
        entries.sort(key=lambda e: -v if (v := getattr(e.score(first), "value", None)) is not None else math.inf)
    return Leaderboard(Path(root), entries, columns, skipped)


# -- columns shared by every output ------------------------------------------------------------------

def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def score_text(m: MetricValue | None) -> str:
    if m is None or m.value is None:
        return "-"
    return fmt(m.value) if m.stderr is None else f"{m.value:.2f} ± {m.stderr:.2f}"


@dataclass(frozen=True)
class Column:
    """One column of the table: a stable key (HTML sorting, URL hash), its title, whether it sorts as a
    number, the sort value and the displayed text of an entry."""

    key: str
    title: str
    numeric: bool
    value: Callable[[Entry], float | str | None]
    text: Callable[[Entry], str]


def _task_column(col: TaskColumn) -> Column:
    def value(e: Entry) -> float | None:
        m = e.score(col)
        return None if m is None else m.value

    return Column(col.key, f"{col.task} ({col.metric})", True, value, lambda e: score_text(e.score(col)))


def _memory_text(e: Entry) -> str:
    mb, kind = e.memory
    return "-" if mb is None else f"{mb:.0f} MB {kind}"


def table_columns(lb: Leaderboard) -> list[Column]:
    """model, checkpoint, backend, (protocol where runs differ in it), date, one column per task, samples/s,
    generated tokens/s, peak memory."""
    tel = lambda e: e.record.telemetry  # noqa: E731
    return [
        Column("model", "model", False, lambda e: e.model, lambda e: e.model),
        Column("checkpoint", "checkpoint", False, lambda e: e.checkpoint, lambda e: e.checkpoint),
        Column("backend", "backend", False, lambda e: e.record.backend, lambda e: e.record.backend),
        # shown only when the runs used more than one protocol (protocol_note says so too)
        *([Column("protocol", "protocol", False, lambda e: e.record.config.protocol,
                  lambda e: e.record.config.protocol)] if lb.protocol_note() else []),
        Column("date", "date", False, lambda e: e.record.created_at, lambda e: e.date),
        *(_task_column(c) for c in lb.columns),
        Column("samples_per_s", "samples/s", True, lambda e: tel(e).samples_per_s,
               lambda e: fmt(tel(e).samples_per_s)),
        Column("gen_tok_s", "gen tok/s", True, lambda e: tel(e).generated_tokens_per_s,
               lambda e: fmt(tel(e).generated_tokens_per_s, 1)),
        Column("memory", "peak memory", True, lambda e: e.memory[0], _memory_text),
    ]


# -- terminal, Markdown, CSV -------------------------------------------------------------------------

