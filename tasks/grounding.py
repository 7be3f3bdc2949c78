"""Referring expression comprehension scored in pixel space: Acc@0.5 (IoU >= 0.5), mean IoU, and the
share of answers that could not be parsed into a box (scored IoU 0, counted apart from errors).

The box in the output is decoded with the model family's own box format (``ParseContext.box_format``);
the scale is never guessed from the magnitude of the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalkit.core.results import SampleRecord
from evalkit.core.types import Json

from .base import ParseContext, Scoring

GROUNDING_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {expr}."


@dataclass
class GroundingScoring(Scoring):
    """For tasks whose target is a pixel box [x1, y1, x2, y2] and metadata holds width/height."""

    def parse(self, output: str, metadata: dict[str, Json], ctx: ParseContext) -> Json:
        from evalkit.core.boxes import decode_box

        box = decode_box(output, ctx.box_format, int(metadata["width"]), int(metadata["height"]))  # type: ignore[arg-type]
        return None if box is None else [round(float(v), 3) for v in box]

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        from evalkit.metrics import iou

        target: Any = record.target
        if record.parsed is None:
            return {"acc@0.5": 0.0, "iou": 0.0, "unparseable": 1.0}
        value = iou(record.parsed, target)  # type: ignore[arg-type]
        return {"acc@0.5": float(value >= 0.5), "iou": value, "unparseable": 0.0}
