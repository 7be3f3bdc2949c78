"""Summary of a run: one table (evalkit.commands.tables: rich on a terminal, full-text Markdown elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text

from evalkit.commands.tables import Col, print_table, wide_console
from evalkit.core.results import RunRecord
from evalkit.core.terminal import printable

_COLUMNS = [Col("task"), Col("metric")] + [Col(c, numeric=True) for c in (
    "value", "± stderr", "n", "errors", "empty", "samples/s", "gen tok/s", "peak RSS MB")]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_run_summary(record: RunRecord, run_dir: Path, console: Any = None) -> None:
    console = console or wide_console()
    rows = []
    for name, t in record.tasks.items():
        m = t.metrics.get(t.primary_metric)
        rows.append([
            name, t.primary_metric, _fmt(m.value if m else None), _fmt(m.stderr if m else None), str(t.n),
            str(t.n_errors), str(t.n_empty), _fmt(t.telemetry.samples_per_s, 1),
            _fmt(t.telemetry.generated_tokens_per_s, 1), _fmt(t.telemetry.peak_rss_mb, 0),
        ])
    print_table(_COLUMNS, rows, title=f"{record.model.name} ({record.backend}) — {record.status}", console=console)
    for name, t in record.tasks.items():
        for note in t.notes:
            console.print(Text("note", style="yellow") + Text(printable(f" {name}: {note}")), soft_wrap=True)
    tel = record.telemetry
    console.print(Text(
        f"wall {tel.wall_s:.1f}s (load {tel.load_s:.1f}s, generate {tel.generate_s:.1f}s, data {tel.data_s:.1f}s, "
        f"score {tel.score_s:.1f}s, write {tel.write_s:.2f}s) · results in {printable(run_dir)}"), soft_wrap=True)
