"""Aggregates with their uncertainty: mean +- standard error, and bootstrap for corpus metrics."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class MetricValue:
    """One aggregated metric: its value, its standard error (None if not estimated), and the
    number of samples it was computed over."""

    value: float
    stderr: float | None
    n: int


def _sample_std(values: Sequence[float]) -> float:
    n = len(values)
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean) of per-sample scores.

    The standard error is the sample standard deviation (ddof=1) divided by sqrt(n); 0.0 when
    there are fewer than 2 values. Raises ValueError for an empty sequence.
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_stderr needs at least one value; got none")
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, _sample_std(values) / math.sqrt(n)


def bootstrap_stderr(
    metric_fn: Callable[[list[T]], float], items: Sequence[T], n_boot: int = 200, seed: int = 0
) -> float:
    """Bootstrap standard error of a corpus-level metric (CIDEr, BLEU, ...).

    ``metric_fn`` maps a list of items to one number; it is called on ``n_boot`` resamples of
    ``items`` drawn with replacement (seeded, so the result is reproducible), and the sample
    standard deviation (ddof=1) of those values is returned. 0.0 for fewer than 2 items.
    """
    items = list(items)
    if n_boot < 2:
        raise ValueError(f"bootstrap_stderr needs n_boot >= 2, got {n_boot}")
    if len(items) < 2:
        return 0.0
    rng = random.Random(seed)
    values = [float(metric_fn(rng.choices(items, k=len(items)))) for _ in range(n_boot)]
    return _sample_std(values)
