"""MMVP-VLM (Tong et al., "Eyes Wide Shut?", CVPR 2024): CLIP-blind pairs for image-text encoders.

The definition followed is the authors' evaluation script, ``scripts/evaluate_vlm.py`` in github.com/tsb0601/MMVP
(and its SigLIP variant in derived work), read, not copied.

Data: the hub repository ``MMVP/MMVP_VLM`` is not parquet. ``Questions.csv`` has the columns ``Question ID``
(1..270), ``Type`` (the visual pattern, e.g. ``Orientation``, ``Camera Perspective``) and ``Statement``; the image
of row ``i`` is ``MLLM_VLM Images/<Type>/<i>.jpg`` (the folder the script reads; the repository README draws it as
``MMVP_VLM_Images``, also accepted). Consecutive rows form a pair, (1, 2), (3, 4), ...: two statements and their
two images, the image of a pair's first row in the folder of its Type (as the script reads both). 9 patterns x 15
pairs. Read from ``DIR/MMVP/MMVP_VLM/`` under ``--data-dir`` (or the hub, which downloads the whole small repo).

Scoring: each statement becomes the text ``"a photo of " + statement``; its logits against the pair's two images
(``logits_per_text``) go through a softmax over the two images, and it picks the first image iff that probability
is above 0.5 (a tie picks the second). The statement of row ``i`` belongs to image ``i``. A pair is right only if
both statements pick their own image. Metrics: ``pair_accuracy`` (primary) over all pairs, ``pair_accuracy.<type>``
per visual pattern (the paper's per-pattern scores; the key is the Type in snake case) and ``statement_accuracy``
(share of statements that pick their image). The script finds a pair's pattern by its position (pair k is pattern
k // 15 of a fixed list); here the Type column names it, which agrees on the published CSV and stays right under
``--limit``. A pair whose rows are not (odd, odd + 1) question ids of one Type is a bad record, not a guess.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.data import DatasetSpec, image_ref
from evalkit.core.errors import UsageError
from evalkit.core.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.core.types import Json, Sample

from .base import ENCODER_KIND, HubTask, ParseContext, Scoring, Task, TaskContext, TaskData, grouped_metric, limited, mean_metrics
from .mmvp import _clean_keys  # header names without a BOM or padding, as for MMVP's CSV

TEXT_PREFIX = "a photo of "
IMAGE_FOLDERS = ("MLLM_VLM Images", "MMVP_VLM_Images")  # the script's folder (the hub's), the README's drawing
# Type column -> the pattern's name in the paper and the script, in the order of the published CSV.
PATTERNS: dict[str, str] = {
    "Orientation": "Orientation and Direction",
    "Presence": "Presence of Specific Features",
    "State": "State and Condition",
    "Quantity": "Quantity and Count",
    "Spatial": "Positional and Relational Context",
    "Color": "Color and Appearance",
    "Structural Character": "Structural Characteristics",
    "Text": "Texts",
    "Camera Perspective": "Viewpoint and Perspective",
}


def pattern_key(type_name: str) -> str:
    """``"Camera Perspective"`` -> ``"camera_perspective"`` (the metric suffix)."""
    return re.sub(r"[^0-9a-z]+", "_", type_name.strip().lower()).strip("_")


def softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def pick(probs: list[float]) -> int:
    """The image a statement picks: the most probable, a tie going to the later image (with two images: the first
    iff its probability is above 0.5, the script's rule)."""
    return max(range(len(probs)), key=lambda j: (probs[j], j))


def image_folder(root: Path) -> str:
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return name
    raise UsageError(f"no '{IMAGE_FOLDERS[0]}' folder next to Questions.csv in {root}; "
                     "download the whole MMVP/MMVP_VLM repository (CSV and images)")


@dataclass
class EncoderPairScoring(Scoring):
    """Each statement picks the image it matches best (softmax over the two images); a pair counts when both
    statements pick their own image (MMVP-VLM's pair accuracy), overall and per visual pattern."""

    def parse(self, output: str, metadata: dict[str, Json], ctx: ParseContext) -> Json:
        """The logit matrix (statements x images) -> each statement's probabilities over the images and its pick."""
        logits = json.loads(output)
        if len(logits) != 2 or any(len(row) != 2 for row in logits):
            raise ValueError(f"expected 2 x 2 logits (statements x images), got {output[:80]!r}")
        probs = [softmax([float(x) for x in row]) for row in logits]
        return {"probs": probs, "picks": [pick(p) for p in probs]}

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        picks = record.parsed["picks"]  # type: ignore[index,call-overload]
        right = [p == t for p, t in zip(picks, record.target)]  # type: ignore[arg-type]
        return {"pair_accuracy": float(all(right)), "statement_accuracy": sum(right) / len(right)}

    def aggregate(self, records: list[SampleRecord], task: Task) -> dict[str, MetricValue]:
        out = mean_metrics(records, task.primary_metric, task.percent)
        # per visual pattern, patterns in the order of their first pair
        out.update(grouped_metric(records, "pattern", "pair_accuracy", task, order=sorted(records, key=_first_question)))
        return out


@dataclass
class MMVPVLMTask(HubTask):
    """MMVP-VLM's 135 statement pairs, one sample per pair."""

    scoring: Scoring = field(default_factory=EncoderPairScoring)

    def load(self, ctx: TaskContext) -> TaskData:
        source = self.open(ctx)
        folder = source.root / image_folder(source.root)
        n = limited((len(source) + 1) // 2, ctx.limit)  # a lone last row is a pair of its own (a bad record)
        return TaskData(n=n, dataset=DatasetInfo(**source.describe()),
                        samples=self._stream(_pairs(source.rows(), folder), n))

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return dict.fromkeys(("Question ID", "Type", "Statement"), ())

    def to_sample(self, pair: dict[str, Any]) -> Sample:
        first, second = pair["rows"]
        if second is None:
            raise ValueError(f"question {first.get('Question ID')} has no second row to pair with")
        qids = [int(str(row["Question ID"]).strip()) for row in (first, second)]
        type_name = str(first["Type"])
        if qids[0] % 2 != 1 or qids[1] != qids[0] + 1 or str(second["Type"]).strip() != type_name.strip():
            raise ValueError(f"rows {qids[0]} and {qids[1]} ({first['Type']!r}, {second['Type']!r}) are not "
                             "one pair: expected question ids (odd, odd + 1) of one Type")
        statements = [str(row["Statement"]) for row in (first, second)]
        if not all(s.strip() for s in statements):
            raise ValueError(f"pair {qids[0]}-{qids[1]} has an empty statement")
        # Confined to the image folder: a Type cell such as "../../etc" fails the sample, nothing is opened.
        images = [image_ref(Path(type_name) / f"{qid}.jpg", pair["folder"]) for qid in qids]
        meta: dict[str, Json] = {
            "question_ids": qids, "pattern": pattern_key(type_name),
            "pattern_name": PATTERNS.get(type_name.strip(), type_name.strip()), "statements": statements,
        }
        return Sample(id=pair["id"], question="", images=images, texts=[TEXT_PREFIX + s for s in statements],
                      target=[0, 1], metadata=meta)


def _first_question(record: SampleRecord) -> int:
    ids = record.metadata.get("question_ids")
    return int(ids[0]) if isinstance(ids, list) and ids and isinstance(ids[0], int) else 0


def _pairs(rows: Iterator[dict[str, Any]], folder: Path) -> Iterator[dict[str, Any]]:
    """CSV rows, two at a time, as the records ``to_sample`` reads (file order, as the script pairs them)."""
    clean = (_clean_keys(row) for row in rows)
    for first in clean:
        second = next(clean, None)
        ids = [str(r.get("Question ID", "?")).strip() for r in (first, second) if r is not None]
        yield {"id": "-".join(ids), "rows": (first, second), "folder": folder}


def mmvp_vlm() -> MMVPVLMTask:
    return MMVPVLMTask(
        name="mmvp_vlm", kind=ENCODER_KIND, primary_metric="pair_accuracy",
        description="MMVP-VLM (135 statement pairs, 9 visual patterns) for CLIP-style encoders; pair accuracy",
        dataset=DatasetSpec("MMVP/MMVP_VLM", split="train", data_files="Questions.csv"), id_column="id",
    )
