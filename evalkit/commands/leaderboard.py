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
import re
from pathlib import Path
from typing import Any

from evalkit.commands.compare import split_names
from evalkit.commands.leaderboard_table import (  # noqa: F401 - re-exported
    Column, Entry, Leaderboard, TaskColumn, build_leaderboard, find_runs, fmt, score_text, table_columns)
from evalkit.commands.tables import Col, print_table, wide_console
from evalkit.core.errors import UsageError
from evalkit.core.terminal import printable



def print_leaderboard(lb: Leaderboard, console: Any = None) -> None:
    """The leaderboard as a table (evalkit.commands.tables); user data goes in as Text (never rich markup)."""
    from rich.text import Text

    console = console or wide_console()
    cols = table_columns(lb)
    rows = []
    for e in lb.entries:
        cells = [Text(c.text(e)) for c in cols]
        if not e.complete:
            cells[0].append(f" [{e.record.status}]", style="bold yellow")
        rows.append(cells)
    print_table([Col(c.title, c.numeric) for c in cols], rows, console=console,
                title=f"evalkit leaderboard — {len(lb.entries)} runs under {lb.root}")
    for line in lb.skipped:
        console.print(Text(printable(f"skipped {line}"), style="yellow"))
    if lb.protocol_note():
        console.print(Text(f"warning: {lb.protocol_note()}", style="bold yellow"))


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
             *([f"**Warning:** {md_cell(lb.protocol_note() or '')}", ""] if lb.protocol_note() else []),
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
    head = ["run_id", "run_dir", "model", "family", "checkpoint", "revision", "backend", "protocol", "created_at",
            "status"]
    for c in lb.columns:
        head += [f"{c.task}/{c.metric}", f"{c.task}/{c.metric}_stderr", f"{c.task}/n"]
    head += ["samples_per_s", "generated_tokens_per_s", "peak_memory_mb", "peak_memory_kind"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for e in lb.entries:
        r, m = e.record, e.record.model
        row: list[Any] = [r.run_id, e.relpath, m.name, m.family, m.checkpoint, m.revision, r.backend,
                          r.config.protocol, r.created_at, r.status]
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

        _write(args.html, render_html(lb, base=Path(args.html).parent))
        console.print(f"wrote {args.html}", markup=False, highlight=False)
    if args.plots:
        for path in write_plots(lb, args.plots):
            console.print(f"wrote {path}", markup=False, highlight=False)
    return 0
