"""Metrics: pure functions, each exact to its benchmark's official definition.

Light by design (no torch, no pycocoevalcap at import): the caption metrics live in
``evalkit.metrics.captioning`` and are imported only by code that asks for them.
"""

from evalkit.core.boxes import iou
from evalkit.metrics.choice import extract_choice
from evalkit.metrics.stats import MetricValue, bootstrap_stderr, mean_stderr
from evalkit.metrics.vqa import gqa_answer, gqa_exact_match, normalize_vqa_answer, vqa_accuracy

__all__ = [
    "MetricValue",
    "bootstrap_stderr",
    "extract_choice",
    "gqa_answer",
    "gqa_exact_match",
    "iou",
    "mean_stderr",
    "normalize_vqa_answer",
    "vqa_accuracy",
]
