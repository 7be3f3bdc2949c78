"""Corpus caption metrics recomputed from per-image statistics equal pycocoevalcap's own scorers, on the whole
corpus and on bootstrap resamples (images drawn several times), so the bootstrap stderr in run.json and compare's
paired corpus test recompute the real metric."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

pytest.importorskip("pycocoevalcap")
from evalkit.metrics.caption_corpus import METRIC_NAMES, RESAMPLED, CaptionCorpus, MeteorSession  # noqa: E402
from evalkit.metrics.paired import paired_corpus_bootstrap  # noqa: E402
from evalkit.metrics.stats import resample_weights  # noqa: E402

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
WORDS = "a dog cat man woman red blue ball runs sits on the grass table with two of plays near big small".split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9)))


def corpus(seed: int, n: int = 14) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    refs = [[_sentence(rng) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    hyps = [rng.choice(r) if rng.random() < 0.3 else _sentence(rng) for r in refs]
    return hyps, refs


def official(hyps: list[str], refs: list[list[str]], weights: np.ndarray, meteor: bool) -> dict[str, float]:
    """pycocoevalcap's scorers on the resampled corpus: image i appears weights[i] times (as distinct ids)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = {}, {}
    for i, k in enumerate(weights):
        for copy in range(int(k)):
            gts[f"{i}#{copy}"], res[f"{i}#{copy}"] = refs[i], [hyps[i]]
    out = dict(zip(["bleu1", "bleu2", "bleu3", "bleu4"], Bleu(4).compute_score(gts, res, verbose=0)[0]))
    out["rouge_l"] = Rouge().compute_score(gts, res)[0]
    out["cider"] = Cider().compute_score(gts, res)[0]
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        out["meteor"] = scorer.compute_score(gts, res)[0]
        del scorer
    return {k: float(v) for k, v in out.items()}


@needs_java
def test_recomputed_metrics_equal_pycocoevalcap_on_the_corpus_and_on_resamples() -> None:
    hyps, refs = corpus(0)
    session = MeteorSession()
    try:
        stats = CaptionCorpus(hyps, refs, RESAMPLED, session)
        assert stats.metrics == list(RESAMPLED)
        weights = [np.ones(len(hyps)), *resample_weights(len(hyps), 3, seed=5)]
        assert any((w > 1).any() for w in weights)  # duplicated images: CIDEr's document frequencies change
        for w in weights:
            expected = official(hyps, refs, w, meteor=True)
            got = {m: stats.value(m, w) for m in RESAMPLED}
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    finally:
        session.close()


def test_without_meteor_session_meteor_is_not_resampled() -> None:
    hyps, refs = corpus(1)
    stats = CaptionCorpus(hyps, refs, ["bleu1", "cider", "meteor"])
    assert stats.metrics == ["bleu1", "bleu2", "bleu3", "bleu4", "cider"] and set(METRIC_NAMES) >= set(RESAMPLED)
    assert stats.value("cider") == pytest.approx(official(hyps, refs, np.ones(len(hyps)), False)["cider"])


def test_paired_corpus_bootstrap_sees_a_real_drop_and_not_noise() -> None:
    hyps, refs = corpus(2, n=60)
    good = CaptionCorpus([r[0] for r in refs], refs, ["cider"])  # copies a reference: high CIDEr
    worse = CaptionCorpus([h if i % 2 else r[0] for i, (h, r) in enumerate(zip(hyps, refs))], refs, ["cider"])
    drop = paired_corpus_bootstrap(lambda w: good.value("cider", w), lambda w: worse.value("cider", w), 60,
                                   scale=100, n_boot=300)
    assert drop.method == "corpus bootstrap" and drop.n == 60
    assert drop.mean_diff < 0 and drop.ci_high < 0 and drop.significant
    same = paired_corpus_bootstrap(lambda w: good.value("cider", w), lambda w: good.value("cider", w), 60, n_boot=50)
    assert same.mean_diff == 0 and not same.significant


@needs_java
def test_run_json_caption_metrics_carry_a_bootstrap_stderr() -> None:
    from evalkit.core.results import SampleRecord
    from evalkit.tasks import get_task

    hyps, refs = corpus(3, n=30)
    task = get_task("nocaps_val")
    records = [SampleRecord(id=str(i), task=task.name, prompt="p", output=h, parsed=h, target=r)
               for i, (h, r) in enumerate(zip(hyps, refs))]
    metrics = task.aggregate(records)
    for name in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider"):
        assert metrics[name].n == 30 and metrics[name].stderr is not None and metrics[name].stderr > 0, name
    stats = CaptionCorpus(hyps, refs, ["cider"])
    from evalkit.metrics.stats import bootstrap_stderr

    expected = bootstrap_stderr(lambda w: stats.value("cider", w), 30, task.scoring.n_boot)
    assert metrics["cider"].stderr == pytest.approx(round(100 * expected, 4), abs=1e-4)
