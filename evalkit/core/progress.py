"""A rich progress bar per task (samples/s and ETA) on stderr; silent when disabled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def task_progress(name: str, total: int, done: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} samples/s"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )
    with progress:
        tid = progress.add_task(name, total=total, completed=done, rate="-")
        import time

        start, seen = time.perf_counter(), 0

        def advance(n: int) -> None:
            nonlocal seen
            seen += n
            elapsed = time.perf_counter() - start
            progress.update(tid, advance=n, rate=f"{seen / elapsed:.1f}" if elapsed > 0 else "-")

        yield advance
