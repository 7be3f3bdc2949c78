"""`evalkit leaderboard RESULTS_DIR`: one table of every run found under a folder, as a terminal table,
Markdown, CSV, a self-contained HTML page (evalkit.commands.leaderboard_html) and PNG plots.

A pure function of the result files: run.json files are found recursively and never rerun. One row per
run (model, checkpoint or revision, backend, date), one column per task's primary metric with its
stderr, then samples/s, generated tokens/s and peak memory (GPU where the run had one, else RSS).
Runs whose status is not "completed" are marked. Rows are ordered by the first task column (best
first, runs without it last), then by date (newest first).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.commands.compare import split_names, wide_console
from evalkit.core.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover - pydantic models, imported when runs are read
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
    """model, checkpoint, backend, date, one column per task, samples/s, generated tokens/s, peak memory."""
    tel = lambda e: e.record.telemetry  # noqa: E731
    return [
        Column("model", "model", False, lambda e: e.model, lambda e: e.model),
        Column("checkpoint", "checkpoint", False, lambda e: e.checkpoint, lambda e: e.checkpoint),
        Column("backend", "backend", False, lambda e: e.record.backend, lambda e: e.record.backend),
        Column("date", "date", False, lambda e: e.record.created_at, lambda e: e.date),
        *(_task_column(c) for c in lb.columns),
        Column("samples_per_s", "samples/s", True, lambda e: tel(e).samples_per_s,
               lambda e: fmt(tel(e).samples_per_s)),
        Column("gen_tok_s", "gen tok/s", True, lambda e: tel(e).generated_tokens_per_s,
               lambda e: fmt(tel(e).generated_tokens_per_s, 1)),
        Column("memory", "peak memory", True, lambda e: e.memory[0], _memory_text),
    ]


# -- terminal, Markdown, CSV -------------------------------------------------------------------------

def print_leaderboard(lb: Leaderboard, console: Any = None) -> None:
    """The leaderboard as a rich table; user data goes in as Text (never parsed as rich markup)."""
    from rich.table import Table
    from rich.text import Text

    console = console or wide_console()
    cols = table_columns(lb)
    table = Table(title=f"evalkit leaderboard — {len(lb.entries)} runs under {lb.root}")
    for c in cols:
        table.add_column(c.title, justify="right" if c.numeric else "left")
    for e in lb.entries:
        cells = [Text(c.text(e)) for c in cols]
        if not e.complete:
            cells[0].append(f" [{e.record.status}]", style="bold yellow")
        table.add_row(*cells)
    console.print(table)
    for line in lb.skipped:
        console.print(Text(f"skipped {line}", style="yellow"))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_cell(text: str) -> str:
    """Text safe in a Markdown table cell: HTML escaped, Markdown punctuation and pipes backslashed."""
    import html

    text = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def to_markdown(lb: Leaderboard) -> str:
    cols = table_columns(lb)
    lines = ["# evalkit leaderboard", "",
             f"{len(lb.entries)} runs. Scores: primary metric ± standard error. Peak memory: GPU where the "
             f"run had one, else RSS.", "",
             "| " + " | ".join(md_cell(c.title) for c in cols) + " |",
             "|" + "|".join("---:" if c.numeric else "---" for c in cols) + "|"]
    for e in lb.entries:
        cells = [md_cell(c.text(e)) for c in cols]
        if not e.complete:
            cells[0] += f" **({md_cell(e.record.status)})**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _csv_safe(value: Any) -> Any:
    """Strings that a spreadsheet would run as a formula get a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(lb: Leaderboard) -> str:
    """One row per run, machine-readable: values and stderrs in separate columns, empty when missing."""
    head = ["run_id", "run_dir", "model", "family", "checkpoint", "revision", "backend", "created_at", "status"]
    for c in lb.columns:
        head += [f"{c.task}/{c.metric}", f"{c.task}/{c.metric}_stderr", f"{c.task}/n"]
    head += ["samples_per_s", "generated_tokens_per_s", "peak_memory_mb", "peak_memory_kind"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for e in lb.entries:
        r, m = e.record, e.record.model
        row: list[Any] = [r.run_id, e.relpath, m.name, m.family, m.checkpoint, m.revision, r.backend, r.created_at,
                          r.status]
        for c in lb.columns:
            s = e.score(c)
            row += [None, None, None] if s is None else [s.value, s.stderr, s.n]
        mem, kind = e.memory
        row += [r.telemetry.samples_per_s, r.telemetry.generated_tokens_per_s, mem, kind if mem is not None else None]
        writer.writerow(["" if v is None else _csv_safe(v) for v in row])
    return buf.getvalue()


# -- plots --------------------------------------------------------------------------------------------

def _plot_label(text: str, limit: int = 32) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")  # no mathtext from a model name


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "task"


def write_plots(lb: Leaderboard, folder: Path) -> list[Path]:
    """PNG files: score vs the task's samples/s (one file per task with data) and peak memory per run."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plots needs matplotlib; run: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for col in lb.columns:
        points = []
        for e in lb.entries:
            m, result = e.score(col), e.record.tasks.get(col.task)
            if m is not None and m.value is not None and result and result.telemetry.samples_per_s:
                points.append((result.telemetry.samples_per_s, m.value, m.stderr, e))
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for x, y, err, e in points:
            ax.errorbar([x], [y], yerr=[err] if err else None, fmt="o" if e.complete else "x", capsize=3)
            ax.annotate(_plot_label(e.model), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xlabel("samples/s (this task)")
        ax.set_ylabel(_plot_label(col.metric))
        ax.set_title(_plot_label(f"{col.task}: score vs throughput", 80))
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = folder / f"score_vs_throughput_{_safe_name(col.task)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    bars = [(e, mb, kind) for e in lb.entries for mb, kind in [e.memory] if mb is not None]
    if bars:
        fig, ax = plt.subplots(figsize=(7, 1.2 + 0.4 * len(bars)))
        labels = [_plot_label(f"{e.model} ({e.record.run_id})", 48) for e, _, _ in bars]
        colors = ["tab:purple" if kind == "GPU" else "tab:blue" for _, _, kind in bars]
        ax.barh(range(len(bars)), [mb for _, mb, _ in bars], color=colors)
        ax.set_yticks(range(len(bars)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("peak memory (MB; purple: GPU, blue: process RSS)")
        ax.set_title("peak memory per run")
        fig.tight_layout()
        path = folder / "peak_memory.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


# -- command line -------------------------------------------------------------------------------------

def add_parser(sub: Any) -> None:
    p = sub.add_parser("leaderboard", help="tabulate every run under a folder (terminal, Markdown, CSV, HTML, plots)",
                       description="Build a leaderboard from result files only (no model is run).")
    p.add_argument("results_dir", type=Path, help="folder searched recursively for run.json files")
    p.add_argument("--md", type=Path, default=None, help="write a Markdown table here")
    p.add_argument("--html", type=Path, default=None, help="write a self-contained, sortable HTML page here")
    p.add_argument("--csv", type=Path, default=None, help="write a CSV file here")
    p.add_argument("--plots", type=Path, default=None, help="write PNG plots into this folder")
    p.add_argument("--tasks", nargs="+", default=None, help="only these tasks (comma or space separated)")
    p.set_defaults(func=cmd_leaderboard)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}; choose a writable path") from exc


def cmd_leaderboard(args: argparse.Namespace) -> int:
    lb = build_leaderboard(args.results_dir, split_names(args.tasks))
    console = wide_console()
    print_leaderboard(lb, console)
    if args.md:
        _write(args.md, to_markdown(lb))
        console.print(f"wrote {args.md}", markup=False, highlight=False)
    if args.csv:
        _write(args.csv, to_csv(lb))
        console.print(f"wrote {args.csv}", markup=False, highlight=False)
    if args.html:
        from evalkit.commands.leaderboard_html import render_html

        _write(args.html, render_html(lb))
        console.print(f"wrote {args.html}", markup=False, highlight=False)
    if args.plots:
        for path in write_plots(lb, args.plots):
            console.print(f"wrote {path}", markup=False, highlight=False)
    return 0
