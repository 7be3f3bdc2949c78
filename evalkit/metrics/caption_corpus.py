"""Corpus caption metrics on bootstrap resamples of the images: stderr for run.json, paired tests for compare.

BLEU, METEOR and CIDEr-D are corpus metrics (BLEU sums n-gram counts over the corpus, METEOR aggregates its
statistics, CIDEr-D takes its idf from the corpus's references), so their uncertainty is estimated by resampling
the images and recomputing the metric on each resample. Recomputing with pycocoevalcap's scorers thousands of
times would take hours; :class:`CaptionCorpus` instead keeps per-image statistics, computed once from the
PTB-tokenized captions with pycocoevalcap's own code, from which the metric of any resample (a vector of
weights: how often each image was drawn, see ``evalkit.metrics.stats.resample_weights``) follows exactly:

- BLEU-1..4: pycocoevalcap's per-image ``guess``/``correct`` counts and test/closest-reference lengths, summed
  with the weights; then BleuScorer's corpus formula (same ``tiny``/``small`` constants, brevity penalty).
- ROUGE-L: the weighted mean of pycocoevalcap's per-image ROUGE-L (its corpus value is the plain mean).
- CIDEr-D: each image's n-gram counts; per resample the document frequencies are recounted from the weights
  (``log(len(crefs))`` is log of the resample's size, as in CiderScorer) and the clipped cosine similarities,
  length penalty (sigma 6) and x10 follow CiderScorer.compute_cider, vectorised.
- METEOR: one METEOR 1.5 JVM (pycocoevalcap's jar and options); each image's statistics line once, then METEOR's
  own aggregation of the resample's lines (one ``EVAL`` request per resample), as ``Meteor.compute_score`` does
  for the whole set.

With all weights 1 every value equals pycocoevalcap's (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.metrics.paired import PairedTest, paired_corpus_bootstrap
from evalkit.metrics.stats import bootstrap_stderr

# evalkit's metric names -> pycocoevalcap's (COCO leaderboard) names
METRIC_NAMES: dict[str, str] = {"bleu1": "Bleu_1", "bleu2": "Bleu_2", "bleu3": "Bleu_3", "bleu4": "Bleu_4",
                                "meteor": "METEOR", "rouge_l": "ROUGE_L", "cider": "CIDEr", "spice": "SPICE"}
RESAMPLED = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")  # SPICE: not resampled
_FAMILY = {"bleu1": "bleu", "bleu2": "bleu", "bleu3": "bleu", "bleu4": "bleu", "meteor": "meteor",
           "rouge_l": "rouge_l", "cider": "cider"}
_SIGMA = 6.0


class MeteorSession:
    """pycocoevalcap's METEOR JVM, used statistic by statistic: ``stats`` sends one ``SCORE`` line per image,
    ``score`` one ``EVAL`` line over the statistics of a (weighted) set of images and returns METEOR's corpus
    value, exactly the two steps of ``Meteor.compute_score``."""

    def __init__(self) -> None:
        from pycocoevalcap.meteor.meteor import Meteor

        self._meteor = Meteor()

    def stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[str]:
        with self._meteor.lock:
            return [self._meteor._stat(h, list(r)) for h, r in zip(hyps, refs)]

    def score(self, stats: Sequence[str], weights: Any = None) -> float:
        lines = list(stats) if weights is None else [s for s, k in zip(stats, weights) for _ in range(int(k))]
        proc = self._meteor.meteor_p
        with self._meteor.lock:
            proc.stdin.write(("EVAL ||| " + " ||| ".join(lines) + "\n").encode())
            proc.stdin.flush()
            for _ in lines:  # per-segment scores, then the corpus score
                proc.stdout.readline()
            return float(proc.stdout.readline().strip())

    def close(self) -> None:
        """Stop the JVM now (also after Ctrl-C mid-request: the process never waits on it at exit)."""
        from evalkit.metrics.captioning import _stop_meteor

        _stop_meteor(self._meteor)
        del self._meteor


class CaptionCorpus:
    """Per-image statistics of one run's tokenized captions (``hyps[i]`` against ``refs[i]``), from which
    :meth:`value` recomputes a corpus metric for any resample weights (None: every image once)."""

    def __init__(self, hyps: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str],
                 meteor: MeteorSession | None = None):
        import numpy as np

        self.n = len(hyps)
        self._np = np
        self._fns: dict[str, Callable[[Any], float]] = {}
        families = {_FAMILY[m] for m in metrics if m in _FAMILY}
        if "bleu" in families:
            self._bleu_stats(hyps, refs)
        if "rouge_l" in families:
            from pycocoevalcap.rouge.rouge import Rouge

            rouge = Rouge()
            per_image = np.array([rouge.calc_score([h], list(r)) for h, r in zip(hyps, refs)], dtype=np.float64)
            self._fns["rouge_l"] = lambda w: float(w @ per_image / w.sum())
        if "cider" in families:
            self._cider_stats(hyps, refs)
        if "meteor" in families and meteor is not None:
            stats = meteor.stats(hyps, refs)
            self._fns["meteor"] = lambda w: meteor.score(stats, w)

    @property
    def metrics(self) -> list[str]:
        return [m for m in RESAMPLED if m in self._fns]

    def value(self, metric: str, weights: Any = None) -> float:
        w = self._np.ones(self.n) if weights is None else weights
        return self._fns[metric](w)

    # -- BLEU ------------------------------------------------------------------------------------------
    def _bleu_stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
        from pycocoevalcap.bleu.bleu_scorer import BleuScorer

        np = self._np
        scorer = BleuScorer(n=4)
        for h, r in zip(hyps, refs):
            scorer += (h, list(r))
        rows = []
        for comps in scorer.ctest:
            testlen = comps["testlen"]
            reflen = min((abs(length - testlen), length) for length in comps["reflen"])[1]  # "closest"
            rows.append([testlen, reflen, *comps["guess"], *comps["correct"]])
        table = np.array(rows, dtype=np.float64).reshape(-1, 10)
        for k in range(4):
            self._fns[f"bleu{k + 1}"] = (lambda k: lambda w: _bleu(w @ table, k))(k)

    # -- CIDEr-D ---------------------------------------------------------------------------------------
    def _cider_stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
        from pycocoevalcap.cider.cider_scorer import precook

        np = self._np
        vocab: dict[tuple[str, ...], int] = {}
        pres: list[tuple[int, int]] = []  # (image, n-gram) for every n-gram of the image's references
        num: list[tuple[int, int, float]] = []  # (ref row * 4 + order, n-gram, min(c, r) * r)
        ref_sq: list[tuple[int, int, float]] = []  # (ref row * 4 + order, n-gram, r^2)
        hyp_sq: list[tuple[int, int, float]] = []  # (image * 4 + order, n-gram, c^2)
        ref_image, penalty, n_refs = [], [], []
        for i, (h, rs) in enumerate(zip(hyps, refs)):
            hc = precook(h)
            h_len = _cider_length(hc)
            for g, c in hc.items():
                hyp_sq.append((4 * i + len(g) - 1, vocab.setdefault(g, len(vocab)), float(c * c)))
            seen: set[int] = set()
            for r in rs:
                rc = precook(r)
                row = len(ref_image)
                ref_image.append(i)
                penalty.append(math.e ** (-(float(h_len - _cider_length(rc)) ** 2) / (2 * _SIGMA**2)))
                for g, c in rc.items():
                    gid = vocab.setdefault(g, len(vocab))
                    seen.add(gid)
                    ref_sq.append((4 * row + len(g) - 1, gid, float(c * c)))
                    if g in hc:
                        num.append((4 * row + len(g) - 1, gid, float(min(hc[g], c) * c)))
            pres.extend((i, gid) for gid in seen)
            n_refs.append(len(rs))

        def cols(entries: list[tuple[int, int, float]]) -> tuple[Any, Any, Any]:
            arr = np.array(entries, dtype=np.float64).reshape(-1, 3)
            return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]

        n_vocab, n_rows = len(vocab), len(ref_image)
        pres_img = np.array([i for i, _ in pres], dtype=np.int64)
        pres_gram = np.array([g for _, g in pres], dtype=np.int64)
        num_c, ref_c, hyp_c = cols(num), cols(ref_sq), cols(hyp_sq)
        ref_image_a, penalty_a = np.array(ref_image, dtype=np.int64), np.array(penalty)
        n_refs_a = np.array(n_refs, dtype=np.float64)

        def weighted(c: tuple[Any, Any, Any], idf2: Any, size: int) -> Any:
            return np.bincount(c[0], weights=c[2] * idf2[c[1]], minlength=size)

        def cider(w: Any) -> float:
            df = np.bincount(pres_gram, weights=w[pres_img], minlength=n_vocab)
            idf2 = (np.log(float(w.sum())) - np.log(np.maximum(1.0, df))) ** 2
            dot = weighted(num_c, idf2, 4 * n_rows)
            norm_ref = np.sqrt(weighted(ref_c, idf2, 4 * n_rows))
            norm_hyp = np.sqrt(weighted(hyp_c, idf2, 4 * self.n)).reshape(-1, 4)[ref_image_a].ravel()
            denom = norm_ref * norm_hyp
            val = np.where(denom != 0, dot / np.where(denom != 0, denom, 1.0), dot).reshape(-1, 4)
            per_ref = (val * penalty_a[:, None]).mean(axis=1)
            per_image = np.bincount(ref_image_a, weights=per_ref, minlength=self.n) / n_refs_a * 10.0
            return float(w @ per_image / w.sum())

        self._fns["cider"] = cider


def _cider_length(counts: dict[tuple[str, ...], int]) -> int:
    """CiderScorer's ``length``: counted where ``len(ngram) - 1 == 1``, i.e. the number of bigrams."""
    return sum(c for g, c in counts.items() if len(g) == 2)


def _bleu(totals: Any, k: int) -> float:
    """BleuScorer.compute_score's corpus BLEU-(k+1) from summed [testlen, reflen, guess x4, correct x4]."""
    small, tiny = 1e-9, 1e-15
    bleu = 1.0
    for j in range(k + 1):
        bleu *= float(totals[6 + j] + tiny) / (totals[2 + j] + small)
    value = bleu ** (1.0 / (k + 1))
    ratio = (totals[0] + tiny) / (totals[1] + small)
    return value * math.exp(1 - 1 / ratio) if ratio < 1 else value


def corpus_stderrs(corpus: CaptionCorpus, n_boot: int, seed: int = 0) -> dict[str, float]:
    """Bootstrap standard error (the metric's own scale) of each metric the corpus can recompute."""
    return {m: bootstrap_stderr(lambda w, m=m: corpus.value(m, w), corpus.n, n_boot, seed) for m in corpus.metrics}


@dataclass(frozen=True)
class CorpusTest:
    """A paired corpus test and the metric of each run on the tested images (x ``scale``), so a caller can
    check that the stored samples reproduce the stored metric before trusting the test."""

    test: PairedTest
    base_value: float
    cand_value: float


def paired_caption_tests(base_preds: Sequence[str], cand_preds: Sequence[str], refs: Sequence[Sequence[str]],
                         metrics: Sequence[str], *, n_boot: int, seed: int, alpha: float,
                         scale: float = 100.0) -> dict[str, CorpusTest]:
    """Paired bootstrap over the images both runs captioned (same order in the three lists): every resample of
    the images is scored on both runs, each corpus metric recomputed; differences are candidate - baseline in
    points (``scale``). Captions are PTB-tokenized here (one JVM call for both runs)."""
    from evalkit.metrics.captioning import ptb_tokenize

    wanted = [m for m in metrics if m in RESAMPLED]
    n = len(refs)
    tokens = ptb_tokenize([*base_preds, *cand_preds, *(r for rs in refs for r in rs)])
    base_tok, cand_tok, flat = tokens[:n], tokens[n:2 * n], tokens[2 * n:]
    ref_tok, pos = [], 0
    for rs in refs:
        ref_tok.append(flat[pos:pos + len(rs)])
        pos += len(rs)
    meteor = MeteorSession() if "meteor" in wanted else None
    try:
        base = CaptionCorpus(base_tok, ref_tok, wanted, meteor)
        cand = CaptionCorpus(cand_tok, ref_tok, wanted, meteor)
        return {m: CorpusTest(paired_corpus_bootstrap(lambda w, m=m: base.value(m, w), lambda w, m=m: cand.value(m, w),
                                                      n, n_boot=n_boot, seed=seed, alpha=alpha, scale=scale),
                              base.value(m) * scale, cand.value(m) * scale)
                for m in base.metrics}
    finally:
        if meteor is not None:
            meteor.close()


def paired_record_tests(base_records: Sequence[Any], cand_records: Sequence[Any], metrics: Sequence[str], *,
                        n_boot: int, seed: int, alpha: float) -> dict[str, CorpusTest]:
    """:func:`paired_caption_tests` over the images both runs captioned without error (stored SampleRecords:
    ``parsed`` caption, ``target`` reference captions), in the baseline's order; {} when none is shared."""
    def ok(r: Any) -> bool:
        return r.error is None and isinstance(r.target, list) and bool(r.target)

    cand = {r.id: r for r in cand_records if ok(r)}
    shared = [r for r in base_records if ok(r) and r.id in cand]
    if not shared or not [m for m in metrics if m in RESAMPLED]:
        return {}
    return paired_caption_tests([str(r.parsed or "") for r in shared], [str(cand[r.id].parsed or "") for r in shared],
                                [[str(c) for c in r.target] for r in shared], metrics, n_boot=n_boot, seed=seed,
                                alpha=alpha)
