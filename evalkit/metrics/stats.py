"""Aggregates with their uncertainty: mean +- standard error, and bootstrap for corpus metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any


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


def resample_weights(n: int, n_boot: int, seed: int = 0) -> Iterator[Any]:
    """``n_boot`` bootstrap resamples of ``n`` items (drawn with replacement, numpy-seeded), each as a float
    array of weights: how often each item was drawn (the weights sum to ``n``). A corpus metric recomputed
    with these weights is the metric of the resampled corpus; two runs given the same weights are paired."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)


def bootstrap_stderr(metric_fn: Callable[[Any], float], n: int, n_boot: int = 200, seed: int = 0) -> float:
    """Bootstrap standard error of a corpus-level metric (CIDEr, BLEU, METEOR, ...) over ``n`` items.

    ``metric_fn`` maps resample weights (see :func:`resample_weights`) to the metric of that resample; the
    sample standard deviation (ddof=1) of ``n_boot`` such values is returned. 0.0 for fewer than 2 items.
    """
    if n_boot < 2:
        raise ValueError(f"bootstrap_stderr needs n_boot >= 2, got {n_boot}")
    if n < 2:
        return 0.0
    return _sample_std([float(metric_fn(w)) for w in resample_weights(n, n_boot, seed)])
