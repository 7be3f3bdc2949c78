"""Paired significance tests for comparing two runs sample by sample.

- ``mcnemar_exact(b, c)``: exact two-sided McNemar test for 0/1 scores, from the discordant counts.
- ``paired_bootstrap(diffs, ...)``: seeded percentile bootstrap of the mean per-sample difference,
  with a confidence interval and a two-sided p-value.
- ``paired_test(base, cand, ...)``: picks McNemar for 0/1 scores (bootstrap CI alongside), the
  bootstrap p-value otherwise.
- ``paired_corpus_bootstrap(base_fn, cand_fn, n, ...)``: for corpus metrics (CIDEr, BLEU, METEOR): the same
  resamples of the shared items scored on both runs, the metric recomputed on each (method "corpus bootstrap").

numpy is imported inside the bootstrap, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.metrics.stats import resample_weights

DEFAULT_N_BOOT = 2000
DEFAULT_SEED = 0
_CHUNK_ELEMENTS = 4_000_000  # resampled indices held in memory at once


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value.

    ``b``: pairs right in the baseline and wrong in the candidate; ``c``: the reverse. Under the null
    hypothesis the b + c discordant pairs split as Binomial(b + c, 1/2), so
    p = min(1, 2 * P(X <= min(b, c))). 1.0 when there is no discordant pair.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    if n <= 1000:  # exact integer arithmetic
        return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    return min(1.0, 2 * math.exp(top) * math.fsum(math.exp(v - top) for v in logs))


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap of a mean difference: the observed mean, its (1 - alpha) interval, and the
    two-sided p-value for "mean difference = 0" (how often resampled means fall on the other side of 0)."""

    mean: float
    ci_low: float
    ci_high: float
    p_value: float
    n_boot: int


def paired_bootstrap(
    diffs: Sequence[float], n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED, alpha: float = 0.05
) -> BootstrapResult:
    """Resample the per-sample differences with replacement ``n_boot`` times (numpy, seeded).

    The interval is the (alpha/2, 1 - alpha/2) percentile interval of the resampled means. The p-value is
    2 * min(share of resampled means <= 0, share >= 0), each share counted as (1 + k) / (1 + n_boot) so a
    finite number of resamples never claims p = 0; capped at 1.
    """
    import numpy as np

    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    if n == 0:
        raise ValueError("paired_bootstrap needs at least one difference")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot, dtype=np.float64)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, per_chunk):
        stop = min(n_boot, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    return _percentile_result(float(d.mean()), means, alpha)


def _percentile_result(observed: float, resampled: Any, alpha: float) -> BootstrapResult:
    """Percentile interval and two-sided p-value of resampled differences (see paired_bootstrap)."""
    import numpy as np

    values = np.asarray(resampled, dtype=np.float64)
    n_boot = values.size
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    below = (1 + int(np.count_nonzero(values <= 0))) / (1 + n_boot)
    above = (1 + int(np.count_nonzero(values >= 0))) / (1 + n_boot)
    return BootstrapResult(mean=observed, ci_low=float(low), ci_high=float(high),
                           p_value=min(1.0, 2 * min(below, above)), n_boot=n_boot)


@dataclass(frozen=True)
class PairedTest:
    """The outcome of a paired test on the samples both runs share (differences are candidate - baseline,
    multiplied by ``scale`` so they read in the metric's units, e.g. points on the x100 scale).

    ``method`` is "mcnemar" (0/1 scores; ``b`` = right before and wrong now, ``c`` = wrong before and
    right now) or "bootstrap"; ``ci_low``/``ci_high`` always come from the paired bootstrap."""

    method: str
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    b: int | None = None
    c: int | None = None

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def is_binary(values: Sequence[float]) -> bool:
    return all(v == 0.0 or v == 1.0 for v in values)


def paired_test(
    base: Sequence[float], cand: Sequence[float], alpha: float = 0.05, scale: float = 1.0,
    n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
) -> PairedTest:
    """Test candidate against baseline on paired per-sample scores (same order, same samples)."""
    if len(base) != len(cand):
        raise ValueError(f"paired scores differ in length: {len(base)} vs {len(cand)}")
    diffs = [(float(y) - float(x)) * scale for x, y in zip(base, cand, strict=True)]
    boot = paired_bootstrap(diffs, n_boot=n_boot, seed=seed, alpha=alpha)
    if is_binary(base) and is_binary(cand):
        b = sum(1 for x, y in zip(base, cand, strict=True) if x == 1.0 and y == 0.0)
        c = sum(1 for x, y in zip(base, cand, strict=True) if x == 0.0 and y == 1.0)
        return PairedTest("mcnemar", len(diffs), boot.mean, boot.ci_low, boot.ci_high, mcnemar_exact(b, c),
                          alpha, b=b, c=c)
    return PairedTest("bootstrap", len(diffs), boot.mean, boot.ci_low, boot.ci_high, boot.p_value, alpha)


def paired_corpus_bootstrap(
    base_fn: Callable[[Any], float], cand_fn: Callable[[Any], float], n: int, alpha: float = 0.05,
    scale: float = 1.0, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
) -> PairedTest:
    """Paired bootstrap of a corpus metric over ``n`` shared items: each function maps resample weights (one per
    item, see ``resample_weights``; all ones = the observed corpus) to that run's metric; every resample is scored
    on both runs and the difference candidate - baseline (times ``scale``) is resampled. The interval and the
    p-value are read as in :func:`paired_bootstrap`."""
    import numpy as np

    if n < 1:
        raise ValueError("paired_corpus_bootstrap needs at least one shared item")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    ones = np.ones(n)
    observed = (cand_fn(ones) - base_fn(ones)) * scale
    diffs = [(cand_fn(w) - base_fn(w)) * scale for w in resample_weights(n, n_boot, seed)]
    boot = _percentile_result(observed, diffs, alpha)
    return PairedTest("corpus bootstrap", n, boot.mean, boot.ci_low, boot.ci_high, boot.p_value, alpha)
