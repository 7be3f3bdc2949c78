"""Captioning scored with pycocoevalcap (PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE if available).

CIDEr's idf comes from the evaluated reference set, so scores are corpus-level: they are computed in
``aggregate`` over all samples that did not fail. A ``--limit`` subset therefore gives a different
CIDEr than the full set (the runner says so in the run's notes).

Hub tasks: ``coco_karpathy_test`` (yerevann/coco-karpathy, the Karpathy 5k test split; that repo
holds COCO URLs, not images: the images are read from ``<filepath>/<filename>`` inside the dataset
folder, i.e. a COCO val2014 folder placed in the mirror), ``nocaps_val`` (lmms-lab/NoCaps) and
``flickr30k_test`` (lmms-lab/flickr30k: all 31,783 images, as lmms-eval's "test"). Prompt: LLaVA-1.5's
short-caption instruction, CAPTION_PROMPT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalkit.core.data import DatasetSpec, image_ref
from evalkit.core.errors import UsageError
from evalkit.core.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.core.types import GenerationSettings, Sample, SampleError

from .base import HubTask, Scoring, Task, TaskContext, TaskData, limited

CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
# Resamples of the images behind each corpus metric's bootstrap stderr (evalkit.metrics.caption_corpus).
CAPTION_N_BOOT = 200


@dataclass
class CaptionScoring(Scoring):
    """Per-sample scores are empty; metrics are corpus metrics over the stored records, each with a bootstrap
    stderr over the images (SPICE: none). A record without reference captions is a failed sample (category
    ``data``), never silently left out of ``n``."""

    metrics: tuple[str, ...] = ("bleu", "meteor", "rouge_l", "cider", "spice")
    n_boot: int = CAPTION_N_BOOT

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        if not isinstance(record.target, list) or not record.target:
            raise SampleError("data", f"no reference captions (target {record.target!r})")
        return {}

    def preflight(self) -> None:
        """pycocoevalcap needs Java: say so before the model generates anything, not after."""
        from evalkit.metrics.captioning import require_java

        require_java()

    def aggregate(self, records: list[SampleRecord], task: Task) -> dict[str, MetricValue]:
        from evalkit.metrics.caption_corpus import METRIC_NAMES
        from evalkit.metrics.captioning import score_captions

        ok = [r for r in records if r.error is None and isinstance(r.target, list) and r.target]
        if not ok:
            return {name: MetricValue(value=None, stderr=None, n=0) for name in ("cider",)}
        preds = {r.id: str(r.parsed or "") for r in ok}
        refs = {r.id: [str(c) for c in r.target] for r in ok}  # type: ignore[union-attr]
        result = score_captions(preds, refs, self.metrics, n_boot=self.n_boot)
        names = {coco: ours for ours, coco in METRIC_NAMES.items()}
        out: dict[str, MetricValue] = {}
        for coco_name, value in result.scores.items():
            se = result.stderr.get(coco_name)
            out[names.get(coco_name, coco_name.lower())] = MetricValue(
                value=None if value is None else round(value * 100, 4),
                stderr=None if se is None or value is None else round(se * 100, 4), n=len(ok))
        return out


# ---------------------------------------------------------------------------------------------
# Hub caption benchmarks (lmms-eval's coco_karpathy_test, nocaps_val, flickr30k_test).


@dataclass
class HubCaptionTask(HubTask):
    """A captioning split read from the hub: one sample per image, all its reference captions
    as the target, the image from ``image_column`` or, for repositories that hold no images
    (yerevann/coco-karpathy), from the file ``image_path`` names inside the dataset folder."""

    captions_column: str = "caption"
    image_column: str = "image"
    # Format string over the row's columns giving the image file relative to the dataset folder,
    # used when the copy has no ``image_column`` (e.g. "{filepath}/{filename}").
    image_path: str | None = None
    scoring: Scoring = field(default_factory=CaptionScoring)

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return {self.captions_column: ("list",)}

    def load(self, ctx: TaskContext) -> TaskData:
        source = self.open(ctx)
        n = limited(len(source), ctx.limit)
        info = DatasetInfo(**source.describe())
        if self.image_column in source.columns or self.image_path is None:
            return TaskData(n=n, dataset=info, samples=self._stream(source.rows(), n))
        self._check_image_files(source)
        rows = ({**row, self.image_column: self._image_file(row, source)} for row in source.rows())
        return TaskData(n=n, dataset=info, samples=self._stream(rows, n))

    def _image_file(self, row: dict[str, Any], source: Any) -> Any:
        """The row's image file as an ImageRef, or None when the row lacks the columns naming it."""
        try:
            return source.image_ref(str(self.image_path).format(**row))
        except (KeyError, IndexError, ValueError):
            return None

    def _check_image_files(self, source: Any) -> None:
        """Fail at open, with the fix, when the image files are not where the task reads them."""
        first = next(source.rows(), None)
        if first is None or self.image_path is None:
            return
        path = source.root / self.image_path.format(**first)
        if not path.is_file():
            raise UsageError(
                f"{self.dataset.hub_id} holds no images; {self.name} reads them from files like {path}: "
                f"put the COCO images there (e.g. the val2014 folder) or pass a copy with an image column"
            )

    def to_sample(self, row: dict[str, Any]) -> Sample:
        captions = row[self.captions_column]
        if not isinstance(captions, list) or not captions:
            raise SampleError("data", f"{self.captions_column} holds no reference captions")
        if row.get(self.image_column) is None:
            raise KeyError(f"record has no {self.image_column}")
        return Sample(
            id=str(row[self.id_column]),
            question=CAPTION_PROMPT,
            images=[image_ref(row[self.image_column])],
            target=[str(c) for c in captions],
            metadata={"image_id": row[self.id_column]},
        )


_CAPTION_GEN = GenerationSettings(max_new_tokens=64)


def coco_karpathy_test() -> HubCaptionTask:
    return HubCaptionTask(
        name="coco_karpathy_test", kind="caption", primary_metric="cider", generation=_CAPTION_GEN, version=2,
        description="COCO Karpathy test split (5,000 images, 5 captions each), COCO caption metrics",
        dataset=DatasetSpec("yerevann/coco-karpathy", split="test",
                            revision="b6cdca8a4fe0f67b7bdcb03d6ed2def420f5a9dd"),
        id_column="cocoid", captions_column="sentences", image_path="{filepath}/{filename}",
    )


def nocaps_val() -> HubCaptionTask:
    return HubCaptionTask(
        name="nocaps_val", kind="caption", primary_metric="cider", generation=_CAPTION_GEN, version=2,
        description="NoCaps validation (4,500 images, 10 captions each), COCO caption metrics",
        dataset=DatasetSpec("lmms-lab/NoCaps", split="validation",
                            revision="44ac713d48d5eb96d4f66a2de19236b5465a5ace"),
        id_column="image_id", captions_column="annotations_captions",
    )


def flickr30k_test() -> HubCaptionTask:
    return HubCaptionTask(
        name="flickr30k_test", kind="caption", primary_metric="cider", generation=_CAPTION_GEN, version=2,
        description="Flickr30k, all 31,783 images as lmms-eval's 'test' (not Karpathy's 1k test), COCO caption metrics",
        dataset=DatasetSpec("lmms-lab/flickr30k", split="test",
                            revision="0d6d9049be2e08261be315e731e0d8054c1d1c03"),
        id_column="img_id", captions_column="caption",
    )
