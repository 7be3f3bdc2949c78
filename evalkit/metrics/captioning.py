"""COCO caption metrics exactly as the COCO caption evaluation (pycocoevalcap) computes them.

Captions (predictions and references alike) are lowercased and tokenized by Stanford's
PTBTokenizer with pycocoevalcap's punctuation list removed, then scored with pycocoevalcap's
Bleu(4) (``closest`` reference length), Meteor 1.5, Rouge (ROUGE-L), Cider (which is CIDEr-D:
the corpus's own reference document frequencies, sigma 6 length penalty, clipping, x10) and,
when it can run, SPICE. The result keys are the COCO leaderboard names (``Bleu_1`` ..
``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE``).

All of this needs Java. SPICE additionally needs Stanford CoreNLP 3.6.0 inside pycocoevalcap's
``spice/lib`` (pycocoevalcap would download it; we never touch the network) and Java 8 or 11
(it fails on newer JVMs); without them its value is None, never 0.

Importing this module is cheap; pycocoevalcap is imported on first use.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.errors import UsageError

log = logging.getLogger(__name__)

CAPTION_METRICS: tuple[str, ...] = ("bleu", "meteor", "rouge_l", "cider", "spice")
_BLEU_KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")
# pycocoevalcap's tokenizer/ptbtokenizer.py PUNCTUATIONS: tokens dropped after tokenizing.
_PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# Anything a JVM may treat as a line break would shift the one-caption-per-line alignment.
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]")
_SPICE_JAVA_MAJORS = (8, 11)


@dataclass(frozen=True)
class CaptionResult:
    """Corpus scores by COCO metric name (None: not computed or unavailable), the per-image CIDEr-D
    scores by image id, and the bootstrap standard errors by COCO name (``n_boot`` > 0; SPICE has none)."""

    scores: dict[str, float | None]
    cider_per_image: dict[str, float]
    stderr: dict[str, float] = field(default_factory=dict)


def _package_dir() -> Path:
    """pycocoevalcap's install folder (it is a namespace package: no ``__file__``)."""
    try:
        import pycocoevalcap
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("captioning metrics need pycocoevalcap; run: pip install pycocoevalcap") from exc
    return Path(next(iter(pycocoevalcap.__path__)))


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise UsageError(
            "captioning metrics need Java (pycocoevalcap runs the PTB tokenizer and METEOR in a JVM); "
            "install a JRE, e.g. `apt-get install default-jre-headless`, and put `java` on PATH"
        )
    return java


def java_major_version(java: str) -> int | None:
    """The major version of the ``java`` executable (8 for "1.8.0_292", 17 for "17.0.15")."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def spice_unavailable_reason(java: str) -> str | None:
    """Why SPICE cannot run here, or None when it can."""
    lib = _package_dir() / "spice" / "lib"
    missing = [j for j in ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar") if not (lib / j).exists()]
    if missing:
        return f"SPICE needs {', '.join(missing)} in {lib}"
    major = java_major_version(java)
    if major not in _SPICE_JAVA_MAJORS:
        return f"SPICE needs Java 8 or 11, found Java {major}"
    return None


def ptb_tokenize(captions: Sequence[str], java: str | None = None) -> list[str]:
    """pycocoevalcap's PTBTokenizer on a list of captions: one JVM call, same command and
    punctuation removal, but the temporary file lives in the system temp dir (pycocoevalcap
    writes it next to the jar, which fails on a read-only site-packages)."""
    java = java or require_java()
    jar = _package_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    text = "\n".join(_LINE_BREAKS.sub(" ", c) for c in captions)
    fd, path = tempfile.mkstemp(suffix=".txt", prefix="evalkit-ptb-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode())
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path]
        proc = subprocess.run(cmd, capture_output=True, check=False)
    finally:
        os.remove(path)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")[-500:]
        raise RuntimeError(f"PTBTokenizer failed (exit {proc.returncode}): {err}")
    lines = proc.stdout.decode(errors="replace").split("\n")
    if len(lines) < len(captions):
        raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(captions)} captions")
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in _PTB_PUNCTUATION) for line in lines[: len(captions)]
    ]


def _check_inputs(
    predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], metrics: Sequence[str]
) -> None:
    unknown = [m for m in metrics if m not in CAPTION_METRICS]
    if unknown:
        raise ValueError(f"unknown caption metric(s) {unknown}; choose from {list(CAPTION_METRICS)}")
    if not predictions:
        raise ValueError("no predictions to score")
    if set(predictions) != set(references):
        missing = len(set(predictions) - set(references))
        extra = len(set(references) - set(predictions))
        raise ValueError(
            "predictions and references must cover the same images "
            f"({missing} without references, {extra} without a prediction)"
        )
    empty = [k for k, refs in references.items() if not refs]
    if empty:
        raise ValueError(f"{len(empty)} image(s) have no reference captions, e.g. {empty[0]!r}")


def score_captions(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = CAPTION_METRICS,
    n_boot: int = 0,
    seed: int = 0,
) -> CaptionResult:
    """Corpus caption metrics plus per-image CIDEr-D (computed whenever "cider" is requested).

    ``predictions`` maps image id -> the model's caption, ``references`` image id -> the human
    captions; both must hold the same ids. ``n_boot`` > 0: also the bootstrap standard error of BLEU,
    METEOR, ROUGE-L and CIDEr over ``n_boot`` resamples of the images (evalkit.metrics.caption_corpus).
    Raises UsageError when Java is missing.
    """
    _check_inputs(predictions, references, metrics)
    java = require_java()
    ids = list(predictions)
    flat = [predictions[i] for i in ids] + [r for i in ids for r in references[i]]
    tokens = ptb_tokenize(flat, java)
    res = {i: [tokens[k]] for k, i in enumerate(ids)}
    gts: dict[str, list[str]] = {}
    pos = len(ids)
    for i in ids:
        gts[i] = tokens[pos : pos + len(references[i])]
        pos += len(references[i])

    _package_dir()
    scores: dict[str, float | None] = {}
    cider_per_image: dict[str, float] = {}
    meteor = None
    try:
        if "meteor" in metrics:
            from evalkit.metrics.caption_corpus import MeteorSession

            # Meteor.compute_score's two steps (a statistics line per image, one EVAL line), in a session the
            # bootstrap below reuses; closed (the JVM killed) on any exit, Ctrl-C included
            meteor = MeteorSession()
            scores["METEOR"] = meteor.score(meteor.stats([res[i][0] for i in ids], [gts[i] for i in ids]))
        _bleu_rouge_cider(gts, res, metrics, scores, cider_per_image)
        stderr: dict[str, float] = {}
        if n_boot > 0:
            from evalkit.metrics.caption_corpus import METRIC_NAMES, CaptionCorpus, corpus_stderrs

            corpus = CaptionCorpus([res[i][0] for i in ids], [gts[i] for i in ids], metric_names(metrics), meteor)
            stderr = {METRIC_NAMES[m]: v for m, v in corpus_stderrs(corpus, n_boot, seed).items()}
    finally:
        if meteor is not None:
            meteor.close()
    if "spice" in metrics:
        scores["SPICE"] = _spice(gts, res, java)
    return CaptionResult(scores=scores, cider_per_image=cider_per_image, stderr=stderr)


def metric_names(metrics: Sequence[str]) -> list[str]:
    """The evalkit metric names a ``metrics`` request (bleu, meteor, rouge_l, cider, spice) produces."""
    return [n for m in metrics for n in (["bleu1", "bleu2", "bleu3", "bleu4"] if m == "bleu" else [m])]


def _bleu_rouge_cider(gts: dict[str, list[str]], res: dict[str, list[str]], metrics: Sequence[str],
                      scores: dict[str, float | None], cider_per_image: dict[str, float]) -> None:
    """pycocoevalcap's Bleu(4), Rouge and Cider on the tokenized captions, into ``scores``."""
    if "bleu" in metrics:
        from pycocoevalcap.bleu.bleu import Bleu

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        scores.update({k: float(v) for k, v in zip(_BLEU_KEYS, bleu)})
    if "rouge_l" in metrics:
        from pycocoevalcap.rouge.rouge import Rouge

        scores["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    if "cider" in metrics:
        from pycocoevalcap.cider.cider import Cider

        cider, per_image = Cider().compute_score(gts, res)
        scores["CIDEr"] = float(cider)
        cider_per_image.update({i: float(s) for i, s in zip(gts, per_image)})


def _stop_meteor(scorer: object) -> None:
    """Kill pycocoevalcap's METEOR JVM (``MeteorSession.close``), also after an interrupted request.
    ``Meteor.compute_score`` takes the wrapper's lock and never releases it on an exception, and
    ``Meteor.__del__`` acquires the same lock: the lock is replaced by a free one, so ``__del__`` finds the JVM
    already gone and returns at once instead of hanging the process at exit."""
    import threading

    proc = getattr(scorer, "meteor_p", None)
    if proc is not None:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a killed process is reaped at once
            pass
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
    scorer.lock = threading.Lock()  # type: ignore[attr-defined]


def _spice(gts: dict[str, list[str]], res: dict[str, list[str]], java: str) -> float | None:
    reason = spice_unavailable_reason(java)
    if reason is not None:
        log.info("SPICE skipped: %s", reason)
        return None
    from pycocoevalcap.spice.spice import Spice

    try:
        return float(Spice().compute_score(gts, res)[0])
    except (subprocess.CalledProcessError, OSError) as exc:
        log.warning("SPICE failed, reported as None: %s", exc)
        return None


def caption_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = CAPTION_METRICS,
) -> dict[str, float | None]:
    """Corpus caption metrics by COCO name (see score_captions); SPICE is None when unavailable."""
    return score_captions(predictions, references, metrics).scores
