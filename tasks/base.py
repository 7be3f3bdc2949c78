"""What every benchmark shares: a data source, parsing, per-sample scoring, aggregation.

A task knows nothing about model families. It yields model-neutral ``Sample``s (``load``), and holds a
``Scoring`` (composition, not mixins): the scoring turns a raw output into a parsed answer (given the family's
box format where boxes are involved), scores one record from what is stored in it (so ``evalkit score`` can
rescore a finished run), and aggregates per-sample scores into metrics with stderr and n. A task module reads
top to bottom as: data source, prompt, parse, score, aggregate, factories.

``version``: bump it when a task's prompt, data or scoring changes. It is recorded in run.json and is part of
the ``--resume`` key, and ``compare`` refuses to compare two runs of one task at different versions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.core.types import GenerationSettings, Json, Sample, SampleError


# Task.kind of tasks scored from an image-text encoder's similarities (Backend.similarity), e.g. mmvp_vlm.
ENCODER_KIND = "encoder"


@dataclass(frozen=True)
class TaskContext:
    """Where data comes from and how much of it to read."""

    data_dir: Path | None = None
    data_path: Path | None = None  # a per-task local path, overrides data_dir
    limit: int | None = None
    seed: int = 0


@dataclass
class TaskData:
    n: int  # samples this run will evaluate (after --limit)
    dataset: DatasetInfo
    samples: Iterator[Sample]


@dataclass(frozen=True)
class ParseContext:
    """What parsing may need to know about the model: its box format."""

    box_format: str = "norm_xyxy"


def mean_metrics(records: list[SampleRecord], primary_metric: str, percent: bool = True) -> dict[str, MetricValue]:
    """Mean and stderr of each per-sample score over the records that did not fail (x100 when ``percent``)."""
    from evalkit.metrics import mean_stderr

    scored = [r for r in records if r.error is None]
    keys = sorted({k for r in scored for k in r.scores})
    scale = 100.0 if percent else 1.0
    out: dict[str, MetricValue] = {}
    for key in keys:
        values = [r.scores[key] for r in scored if r.scores.get(key) is not None]
        if not values:
            out[key] = MetricValue(value=None, stderr=None, n=0)
            continue
        mean, se = mean_stderr(values)
        out[key] = MetricValue(value=round(mean * scale, 4), stderr=round(se * scale, 4), n=len(values))
    if primary_metric not in out:
        out[primary_metric] = MetricValue(value=None, stderr=None, n=0)
    return out


def grouped_metric(records: list[SampleRecord], key: str, metric: str, task: Task,
                   order: list[SampleRecord] | None = None) -> dict[str, MetricValue]:
    """``metric`` per value of ``metadata[key]``: {"<metric>.<value>": MetricValue}, groups in first-seen order
    of ``order`` (default: sorted by value). Empty when fewer than two groups exist and ``order`` is None."""
    groups: dict[str, list[SampleRecord]] = {}
    for r in order if order is not None else records:
        if r.metadata.get(key) is not None:
            groups.setdefault(str(r.metadata[key]), []).append(r)
    if order is None:
        if len(groups) < 2:
            return {}
        groups = dict(sorted(groups.items()))
    return {f"{metric}.{value}": mean_metrics(group, metric, task.percent)[metric] for value, group in groups.items()}


class Scoring:
    """How outputs become scores: ``parse`` (raw text -> parsed answer), ``score`` (one stored record ->
    per-sample scores in [0, 1]), ``aggregate`` (records -> metrics). Default: the stripped text, no per-sample
    score, the mean of whatever per-sample scores exist."""

    def parse(self, output: str, metadata: dict[str, Json], ctx: ParseContext) -> Json:
        return output.strip()

    def preflight(self) -> None:
        """Raise UsageError when scoring cannot run on this machine (checked before any model loads)."""

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        return {}

    def aggregate(self, records: list[SampleRecord], task: Task) -> dict[str, MetricValue]:
        return mean_metrics(records, task.primary_metric, task.percent)


@dataclass
class Task(ABC):
    name: str
    # "vqa" | "caption" | "grounding" | "choice" | "open": adapters key instruction overrides on it;
    # "encoder": scored from an image-text encoder's similarities (Backend.similarity), not from generated text.
    kind: str
    primary_metric: str
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    description: str = ""
    # Metrics reported as percentages (x100); per-sample scores stay in [0, 1].
    percent: bool = True
    # Dialogues whose later turns need the model's earlier answers: the runner asks ``followups`` for them.
    multi_turn: bool = False
    scoring: Scoring = field(default_factory=Scoring)
    version: int = 1

    @abstractmethod
    def load(self, ctx: TaskContext) -> TaskData:
        """Open the data and return a lazy stream of samples (images decoded later, per batch)."""

    def parse(self, output: str, metadata: dict[str, Json], ctx: ParseContext) -> Json:
        return self.scoring.parse(output, metadata, ctx)

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        """Per-sample scores in [0, 1] from ``record.parsed`` and ``record.target``."""
        return self.scoring.score(record)

    def score_records(self, records: list[SampleRecord]) -> list[dict[str, float | None] | SampleError]:
        """Scores of several records, or the SampleError of each that cannot be scored (the runner's entry
        point). Default: ``score`` one by one; an LLM-judged task overrides it to judge them concurrently."""
        out: list[dict[str, float | None] | SampleError] = []
        for record in records:
            try:
                out.append(self.score(record))
            except SampleError as exc:
                out.append(exc)
            except Exception as exc:  # a scorer bug must not kill a long run; it is recorded and counted
                out.append(SampleError("scoring", f"{type(exc).__name__}: {exc}"))
        return out

    def followups(self, records: list[SampleRecord]) -> list[Sample]:
        """Multi-turn tasks: the samples that can be asked now that ``records`` (all stored so far) exist.
        The runner calls it after each pass until nothing new comes back."""
        return []

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        return self.scoring.aggregate(records, self)

    def finalize(self, records: list[SampleRecord], run_dir: Path) -> tuple[dict[str, str], list[str]]:
        """Extra files (e.g. a submission file) and notes for the run output. Default: none."""
        return {}, []


def limited(n_total: int, limit: int | None) -> int:
    return n_total if limit is None else min(n_total, limit)


def bad_record(sample_id: str, exc: Exception) -> Sample:
    """A placeholder sample for a record that could not be read: recorded as an error, never dropped."""
    return Sample(id=sample_id, question="", load_error=SampleError("bad_record", f"{type(exc).__name__}: {exc}"))


@dataclass
class HubTask(Task):
    """A task read from a hub dataset (or its local mirror) with evalkit.core.data."""

    dataset: Any = None  # evalkit.core.data.DatasetSpec
    id_column: str = "question_id"

    @abstractmethod
    def to_sample(self, row: dict[str, Any]) -> Sample:
        """One dataset row -> Sample. KeyError/TypeError/ValueError mark the record as bad."""

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        """Columns every row needs -> the arrow type kinds allowed (see ``DatasetSource.check``)."""
        return {}

    def open(self, ctx: TaskContext) -> Any:
        """``open_dataset`` plus the whole-dataset checks (columns and their types, unique ids), done before any
        model loads: a wrong dataset is one line naming the file (exit 2), not a run of failed samples."""
        from evalkit.core.data import open_dataset

        source = open_dataset(self.dataset, data_dir=ctx.data_dir, path=ctx.data_path)
        source.check(self.required_columns(), self.id_column)
        return source

    def load(self, ctx: TaskContext) -> TaskData:
        source = self.open(ctx)
        n = limited(len(source), ctx.limit)
        info = DatasetInfo(**source.describe())
        return TaskData(n=n, dataset=info, samples=self._stream(source.rows(), n))

    def _stream(self, rows: Iterator[dict[str, Any]], n: int) -> Iterator[Sample]:
        for index, row in enumerate(rows):
            if index >= n:
                return
            sample_id = str(row.get(self.id_column, f"row-{index}"))
            try:
                yield self.to_sample(row)
            except SampleError as exc:  # e.g. a row with no image at all
                yield Sample(id=sample_id, question="", load_error=exc)
            except (KeyError, TypeError, ValueError) as exc:
                yield bad_record(sample_id, exc)
