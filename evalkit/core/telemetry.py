"""Wall-clock phases, token throughput and peak memory (RSS of the whole process tree)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


def tree_rss_mb() -> float:
    """Resident memory of this process and all its descendants (vLLM runs its engine in a child)."""
    import psutil

    proc = psutil.Process()
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


class PeakMemory:
    """Samples the process tree's RSS in a background thread; ``peak_mb`` is the maximum seen, ``task_peak_mb``
    the maximum seen since the last ``start_task`` (one task's own peak, not the run's so far)."""

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self.peak_mb = self.task_peak_mb = tree_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evalkit-rss", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> float:
        now = tree_rss_mb()
        self.peak_mb = max(self.peak_mb, now)
        self.task_peak_mb = max(self.task_peak_mb, now)
        return now

    def start_task(self) -> None:
        self.task_peak_mb = tree_rss_mb()

    def reset(self) -> None:
        self.peak_mb = tree_rss_mb()

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sample()


@dataclass
class Phases:
    """Accumulated seconds per phase (load, data, generate, score, write)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def time(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def get(self, phase: str) -> float:
        return self.seconds.get(phase, 0.0)


def rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 3) if seconds > 0 else None


def hit_rate(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of prompt tokens served from a prefix cache between two ``Backend.prefix_cache_counts`` readings
    (prompt tokens, cached tokens); None when the engine reused nothing or saw no prompt."""
    if after is None:
        return None
    queries = after[0] - (before[0] if before else 0)
    hits = after[1] - (before[1] if before else 0)
    return round(hits / queries, 4) if queries > 0 else None

