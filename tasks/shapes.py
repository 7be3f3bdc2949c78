"""The synthetic "shapes" suite: the embedded default benchmark, generated from a seed (no files).

Each task uses the same scoring code as its real counterpart: shapes_vqa the VQA accuracy,
shapes_caption the COCO caption metrics, shapes_grounding Acc@0.5 in pixel space, shapes_pairs
MMVP's per-question and pair accuracy. The evaluation seed is fixed (EVAL_SEED); the bundled
reference model was trained on other seeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from evalkit.core.results import DatasetInfo
from evalkit.core.types import GenerationSettings, ImageRef, Sample

from .base import Task, TaskContext, TaskData, limited
from .captioning import CaptionScoring
from .choice import ChoiceScoring
from .grounding import GroundingScoring
from .vqa import VQAScoring


@dataclass
class ShapesTask(Task):
    """Samples from evalkit.synthetic.shapes for one of its four item kinds, scored by the real benchmark's
    scoring (given as ``scoring``)."""

    part: str = "vqa"  # key of shapes.suite(): vqa | caption | grounding | pairs

    def load(self, ctx: TaskContext) -> TaskData:
        from evalkit.synthetic import shapes

        items = _ITEMS[self.part](shapes, shapes.EVAL_SEED)
        n = limited(len(items), ctx.limit)
        digest = hashlib.sha256()
        for item in items:
            digest.update(repr((item.id, item.question, item.scene.key)).encode())
        info = DatasetInfo(id=f"evalkit/shapes-{self.part}", split=f"seed{shapes.EVAL_SEED}",
                           revision=None,
                           content_hash=digest.hexdigest()[:16], location="built in (evalkit.synthetic.shapes)", n=len(items))
        return TaskData(n=n, dataset=info, samples=self._stream(items[:n]))

    def _stream(self, items: list[Any]) -> Iterator[Sample]:
        for item in items:
            yield Sample(id=item.id, question=item.question, images=[ImageRef(data=item.scene.png())],
                         target=_TARGETS[self.part](item), metadata=_metadata(item))


def _metadata(item: Any) -> dict[str, Any]:
    from evalkit.synthetic.shapes import IMAGE_SIZE

    meta: dict[str, Any] = {"width": IMAGE_SIZE, "height": IMAGE_SIZE}
    for key in ("answer_type", "pair_id", "qtype", "expression"):
        if getattr(item, key, None):
            meta[key] = getattr(item, key)
    if getattr(item, "options", None):
        meta["options"] = list(item.options)
    meta.update(getattr(item, "metadata", {}) or {})
    return meta


_ITEMS: dict[str, Callable[[Any, int], list[Any]]] = {
    "vqa": lambda s, seed: s.vqa_items(seed, s.SUITE_SIZES["vqa"]),
    "caption": lambda s, seed: s.caption_items(seed, s.SUITE_SIZES["caption"]),
    "grounding": lambda s, seed: s.grounding_items(seed, s.SUITE_SIZES["grounding"]),
    "pairs": lambda s, seed: s.pair_items(seed, s.SUITE_SIZES["pairs"]),
}
_TARGETS: dict[str, Callable[[Any], Any]] = {
    "vqa": lambda item: list(item.answers),
    "caption": lambda item: list(item.captions),
    "grounding": lambda item: [float(v) for v in item.box],
    "pairs": lambda item: "ab".index(item.answer),
}


def _shapes(part: str, kind: str, metric: str, scoring: Any, max_new_tokens: int, description: str,
            version: int = 1) -> ShapesTask:
    return ShapesTask(name=f"shapes_{part}", kind=kind, primary_metric=metric, part=part, scoring=scoring,
                      generation=GenerationSettings(max_new_tokens=max_new_tokens), description=description,
                      version=version)


def shapes_vqa() -> ShapesTask:
    return _shapes("vqa", "vqa", "accuracy", VQAScoring(), 8,
                   "synthetic shapes: colour/shape/count/position/yes-no, VQA accuracy", version=2)


def shapes_caption() -> ShapesTask:
    return _shapes("caption", "caption", "cider", CaptionScoring(), 40, "synthetic shapes captions, COCO caption metrics",
                   version=2)


def shapes_grounding() -> ShapesTask:
    return _shapes("grounding", "grounding", "acc@0.5", GroundingScoring(), 32,
                   "synthetic shapes referring expressions, Acc@0.5 in pixels")


def shapes_pairs() -> ShapesTask:
    return _shapes("pairs", "choice", "pair_accuracy", ChoiceScoring(), 8,
                   "synthetic MMVP-style pairs, accuracy and pair accuracy")
