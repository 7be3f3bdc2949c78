"""Captioning scored with pycocoevalcap (PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE if available).

CIDEr's idf comes from the evaluated reference set, so scores are corpus-level: they are computed in
``aggregate`` over all samples that did not fail. A ``--limit`` subset therefore gives a different
CIDEr than the full set (the runner says so in the run's notes).
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.results import MetricValue, SampleRecord

from .base import Task

CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
_NAMES = {"Bleu_1": "bleu1", "Bleu_2": "bleu2", "Bleu_3": "bleu3", "Bleu_4": "bleu4", "METEOR": "meteor",
          "ROUGE_L": "rouge_l", "CIDEr": "cider", "SPICE": "spice"}


@dataclass
class CaptionScoring:
    """Mixin: per-sample scores are empty; metrics are corpus metrics over the stored records."""

    metrics: tuple[str, ...] = ("bleu", "meteor", "rouge_l", "cider", "spice")

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        return {}

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        from evalkit.metrics import mean_stderr
        from evalkit.metrics.captioning import score_captions

        ok = [r for r in records if r.error is None and isinstance(r.target, list) and r.target]
        if not ok:
            return {name: MetricValue(value=None, stderr=None, n=0) for name in ("cider",)}
        preds = {r.id: str(r.parsed or "") for r in ok}
        refs = {r.id: [str(c) for c in r.target] for r in ok}  # type: ignore[union-attr]
        result = score_captions(preds, refs, self.metrics)
        out: dict[str, MetricValue] = {}
        for coco_name, value in result.scores.items():
            out[_NAMES.get(coco_name, coco_name.lower())] = MetricValue(
                value=None if value is None else round(value * 100, 4), stderr=None, n=len(ok))
        if result.cider_per_image:
            # Corpus CIDEr-D is the mean of the per-image scores (idf fixed by the whole set).
            _, se = mean_stderr(list(result.cider_per_image.values()))
            out["cider"] = out["cider"].model_copy(update={"stderr": round(se * 100, 4)})
        return out


@dataclass
class CaptionTask(CaptionScoring, Task):
    pass
