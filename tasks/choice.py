"""Two-or-more-option questions scored per question and per pair (MMVP's headline number).

``parsed`` is the index of the chosen option (``evalkit.metrics.extract_choice``) or None;
``target`` is the index of the right option. ``pair_accuracy`` counts a pair only if all its
questions are right; a pair with a failed sample, or with only one question evaluated, is left out of
pair_accuracy (failed samples are counted as errors).
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit.core.results import MetricValue, SampleRecord
from evalkit.core.types import Json

from .base import ParseContext, Scoring, Task, mean_metrics

CHOICE_SUFFIX = "\nAnswer with the option's letter from the given choices directly."


@dataclass
class ChoiceScoring(Scoring):
    """Per-question accuracy and pair accuracy; metadata holds ``options`` (list of option texts) and ``pair_id``."""

    def parse(self, output: str, metadata: dict[str, Json], ctx: ParseContext) -> Json:
        from evalkit.metrics import extract_choice

        return extract_choice(output, [str(o) for o in metadata["options"]])  # type: ignore[union-attr]

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        return {"accuracy": float(record.parsed is not None and record.parsed == record.target)}

    def aggregate(self, records: list[SampleRecord], task: Task) -> dict[str, MetricValue]:
        from evalkit.metrics import mean_stderr
        from evalkit.metrics.choice import pair_scores

        out = mean_metrics(records, task.primary_metric, task.percent)
        values = list(pair_scores(records).values())
        if values:
            mean, se = mean_stderr(values)
            out["pair_accuracy"] = MetricValue(value=round(mean * 100, 4), stderr=round(se * 100, 4), n=len(values))
        else:
            out["pair_accuracy"] = MetricValue(value=None, stderr=None, n=0)
        return out
