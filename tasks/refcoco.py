"""RefCOCO, RefCOCO+ and RefCOCOg referring expression comprehension (lmms-eval's ``*_bbox_rec``).

Data: ``lmms-lab/RefCOCO``, ``lmms-lab/RefCOCOplus``, ``lmms-lab/RefCOCOg``. One row per referred
object: ``question_id``, ``image``, ``question`` (a fixed region-captioning prompt, unused here),
``answer`` (the list of referring expressions for the object), ``segmentation``, ``bbox``
(COCO ``[x, y, w, h]`` in pixels), ``iscrowd``, ``file_name``.

As in lmms-eval's ``refcoco_bbox_rec_preprocess_dataset``, every referring expression is its own
sample (the standard REC protocol: accuracy over expressions, not objects); sample ids are
``<question_id>_<k>`` for the k-th expression. The target is the pixel box ``[x, y, x + w, y + h]``;
``width``/``height`` come from the image header (read without decoding the pixels).

Scoring (``GroundingScoring``): the model's box is decoded in its family's box format and compared
in pixels. lmms-eval compares in [0, 1] coordinates; IoU is unchanged by that per-axis scaling, so
``iou`` and ``acc@0.5`` are the same numbers. lmms-eval turns an unparseable answer into
``[0, 0, 0, 0]`` (IoU 0); here it scores IoU 0 too and is also counted in ``unparseable``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from evalkit.core.data import DatasetSpec, image_ref
from evalkit.core.results import DatasetInfo
from evalkit.core.types import GenerationSettings, Sample, SampleError

from .base import Scoring, Task, TaskContext, TaskData, bad_record, limited
from .grounding import GROUNDING_PROMPT, GroundingScoring


def xywh_to_xyxy(box: Any) -> list[float]:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` (pixels). ValueError unless 4 numbers, w, h >= 0."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError(f"bbox must be 4 numbers [x, y, w, h], got {box!r}")
    x, y, w, h = (float(v) for v in box)
    if w < 0 or h < 0:
        raise ValueError(f"bbox has a negative width or height: {box!r}")
    return [x, y, x + w, y + h]


def image_size(cell: Any) -> tuple[int, int]:
    """(width, height) of a hub image cell from its header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SampleError("bad_record", "record has no image bytes")
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SampleError("image_decode", f"cannot read the image header: {exc}") from exc


@dataclass
class RefCOCOTask(Task):
    """One split of a RefCOCO-family dataset, one sample per referring expression."""

    dataset: Any = None  # DatasetSpec
    id_column: str = "question_id"
    expressions_column: str = "answer"
    scoring: Scoring = field(default_factory=GroundingScoring)

    def load(self, ctx: TaskContext) -> TaskData:
        from evalkit.core.data import open_dataset

        source = open_dataset(self.dataset, data_dir=ctx.data_dir, path=ctx.data_path)
        # Repeated question ids are kept, made unique by a "#row<i>" suffix (see _stream).
        source.check({self.expressions_column: ("list",), "bbox": ("list",), "image": ("struct", "binary", "string")})
        # Count expressions from the answer column alone (parquet reads no image bytes for this).
        total = sum(len(r[self.expressions_column] or []) for r in source.rows(columns=[self.expressions_column]))
        info = source.describe()
        info["n"] = total  # samples are expressions, not rows
        n = limited(total, ctx.limit)
        return TaskData(n=n, dataset=DatasetInfo(**info), samples=self._stream(source.rows(), n))

    def _stream(self, rows: Iterator[dict[str, Any]], n: int) -> Iterator[Sample]:
        seen: set[str] = set()
        count = 0
        for index, row in enumerate(rows):
            try:
                samples = self.samples_of(row)
            except (KeyError, TypeError, ValueError) as exc:
                samples = [bad_record(str(row.get(self.id_column, f"row-{index}")), exc)]
            for sample in samples:
                if count >= n:
                    return
                if sample.id in seen:  # a repeated question_id must not shadow a sample on resume
                    sample.id = f"{sample.id}#row{index}"
                seen.add(sample.id)
                count += 1
                yield sample

    def samples_of(self, row: dict[str, Any]) -> list[Sample]:
        """The samples of one object row: one per referring expression."""
        expressions = row[self.expressions_column]
        if not isinstance(expressions, list) or not all(isinstance(e, str) for e in expressions):
            raise TypeError(f"{self.expressions_column} must be a list of referring expressions")
        target = xywh_to_xyxy(row["bbox"])
        qid = str(row[self.id_column])
        if row.get("image") is None:
            raise KeyError("record has no image")
        ref = image_ref(row["image"])
        error: SampleError | None = None
        width = height = 0
        try:
            width, height = image_size(row["image"])
        except SampleError as exc:
            error = exc
        return [
            Sample(
                id=f"{qid}_{k}",
                question=GROUNDING_PROMPT.format(expr=expr),
                images=[ref],
                target=target,
                metadata={"question_id": qid, "expression": expr, "width": width, "height": height,
                          "file_name": row.get("file_name")},
                load_error=error,
            )
            for k, expr in enumerate(expressions)
        ]


_GROUNDING_GEN = GenerationSettings(max_new_tokens=48)

# task name -> (hub id, split, pinned hub revision or None where no full commit id was found)
_SPLITS: dict[str, tuple[str, str, str | None]] = {
    "refcoco_val": ("lmms-lab/RefCOCO", "val", "e15256ece129a21d62e216f95f98ba2e808f96a0"),
    "refcoco_testA": ("lmms-lab/RefCOCO", "testA", "e15256ece129a21d62e216f95f98ba2e808f96a0"),
    "refcoco_testB": ("lmms-lab/RefCOCO", "testB", "e15256ece129a21d62e216f95f98ba2e808f96a0"),
    "refcoco+_val": ("lmms-lab/RefCOCOplus", "val", "6ff10a221309bc4791d1ff7d57f8bbcb509b9e9d"),
    "refcoco+_testA": ("lmms-lab/RefCOCOplus", "testA", "6ff10a221309bc4791d1ff7d57f8bbcb509b9e9d"),
    "refcoco+_testB": ("lmms-lab/RefCOCOplus", "testB", "6ff10a221309bc4791d1ff7d57f8bbcb509b9e9d"),
    "refcocog_val": ("lmms-lab/RefCOCOg", "val", None),
    "refcocog_test": ("lmms-lab/RefCOCOg", "test", None),
}


def make_refcoco_task(name: str) -> RefCOCOTask:
    """The task ``name`` (a key of the split table: refcoco_val, refcoco+_testA, refcocog_test, ...)."""
    hub_id, split, revision = _SPLITS[name]
    return RefCOCOTask(
        name=name, kind="grounding", primary_metric="acc@0.5", generation=_GROUNDING_GEN,
        description=f"{hub_id.split('/')[1]} {split}: referring expressions, Acc@0.5 and mean IoU in pixels",
        dataset=DatasetSpec(hub_id, split=split, revision=revision),
    )


def refcoco_val() -> RefCOCOTask:
    return make_refcoco_task("refcoco_val")


def refcoco_testA() -> RefCOCOTask:  # noqa: N802 - the split is called testA
    return make_refcoco_task("refcoco_testA")


def refcoco_testB() -> RefCOCOTask:  # noqa: N802
    return make_refcoco_task("refcoco_testB")


def refcoco_plus_val() -> RefCOCOTask:
    return make_refcoco_task("refcoco+_val")


def refcoco_plus_testA() -> RefCOCOTask:  # noqa: N802
    return make_refcoco_task("refcoco+_testA")


def refcoco_plus_testB() -> RefCOCOTask:  # noqa: N802
    return make_refcoco_task("refcoco+_testB")


def refcocog_val() -> RefCOCOTask:
    return make_refcoco_task("refcocog_val")


def refcocog_test() -> RefCOCOTask:
    return make_refcoco_task("refcocog_test")
