"""Mean +- standard error and the bootstrap, against hand-computed values."""

import math
import random

import numpy as np
import pytest

from evalkit.metrics import MetricValue, bootstrap_stderr, mean_stderr
from evalkit.metrics.stats import resample_weights


def test_mean_stderr_by_hand():
    mean, se = mean_stderr([1, 2, 3, 4])
    assert mean == 2.5
    # sample variance (ddof=1) = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3; se = sqrt(5/3) / sqrt(4)
    assert se == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-12)


def test_mean_stderr_of_accuracies():
    mean, se = mean_stderr([1.0, 0.0, 0.0, 1.0, 1.0])
    assert mean == pytest.approx(0.6)
    assert se == pytest.approx(math.sqrt(0.3 / 5))  # sample variance of 3 ones, 2 zeros = 0.3


def test_single_value_has_zero_stderr():
    assert mean_stderr([0.7]) == (0.7, 0.0)


def test_constant_values_have_zero_stderr():
    assert mean_stderr([0.5] * 10) == (0.5, 0.0)


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        mean_stderr([])


def _weighted_mean(items):
    values = np.asarray(items, dtype=float)
    return lambda w: float(w @ values / w.sum())


def test_resample_weights_are_draws_with_replacement():
    weights = list(resample_weights(7, 50, seed=1))
    assert len(weights) == 50 and all(w.sum() == 7 and (w >= 0).all() and w.dtype == float for w in weights)
    assert any((w == 0).any() for w in weights)  # some item left out
    assert [w.tolist() for w in resample_weights(7, 5, seed=1)] == [w.tolist() for w in weights[:5]]


def test_bootstrap_is_seeded_and_reproducible():
    rng = random.Random(1)
    items = [rng.random() for _ in range(50)]
    fn = _weighted_mean(items)
    assert bootstrap_stderr(fn, len(items), seed=3) == bootstrap_stderr(fn, len(items), seed=3)
    assert bootstrap_stderr(fn, len(items), seed=3) != bootstrap_stderr(fn, len(items), seed=4)


def test_bootstrap_of_the_mean_approximates_the_analytic_stderr():
    rng = random.Random(0)
    items = [float(rng.random() < 0.5) for _ in range(400)]
    _, analytic = mean_stderr(items)
    assert bootstrap_stderr(_weighted_mean(items), len(items), n_boot=1000) == pytest.approx(analytic, rel=0.15)


def test_bootstrap_of_a_corpus_metric_uses_resamples():
    # A corpus metric that is not a mean of per-item scores: the max of the drawn items. Resamples of 0..9
    # miss the 9 with probability 0.9**10 ~ 0.35, so the max varies.
    def max_drawn(values):
        return lambda w: max(v for v, k in zip(values, w) if k > 0)

    assert bootstrap_stderr(max_drawn(list(range(10))), 10) > 0
    assert bootstrap_stderr(max_drawn([3, 3, 3]), 3) == 0.0


def test_bootstrap_with_fewer_than_two_items():
    assert bootstrap_stderr(_weighted_mean([0.4]), 1) == 0.0


def test_metric_value_holds_its_fields():
    mv = MetricValue(value=0.5, stderr=0.01, n=100)
    assert (mv.value, mv.stderr, mv.n) == (0.5, 0.01, 100)
    assert MetricValue(0.5, None, 3) == MetricValue(0.5, None, 3)
