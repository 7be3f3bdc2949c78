"""Terminal summary of a run (rich table)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from evalkit.core.results import RunRecord


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_run_summary(record: RunRecord, run_dir: Path, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{record.model.name} ({record.backend}) — {record.status}")
    for col in ("task", "metric", "value", "± stderr", "n", "errors", "empty", "samples/s", "gen tok/s", "peak RSS MB"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for name, t in record.tasks.items():
        m = t.metrics.get(t.primary_metric)
        table.add_row(
            name, t.primary_metric, _fmt(m.value if m else None), _fmt(m.stderr if m else None), str(t.n),
            str(t.n_errors), str(t.n_empty), _fmt(t.telemetry.samples_per_s, 1),
            _fmt(t.telemetry.generated_tokens_per_s, 1), _fmt(t.telemetry.peak_rss_mb, 0),
        )
    console.print(table)
    for name, t in record.tasks.items():
        for note in t.notes:
            console.print(f"[yellow]note[/] {name}: {note}")
    tel = record.telemetry
    console.print(
        f"wall {tel.wall_s:.1f}s (load {tel.load_s:.1f}s, generate {tel.generate_s:.1f}s, data {tel.data_s:.1f}s, "
        f"score {tel.score_s:.1f}s, write {tel.write_s:.2f}s) · results in {run_dir}"
    )
