"""VQA-style tasks: VQAv2, OK-VQA and TextVQA (official VQA accuracy), GQA (GQA's exact match).

Prompt: the question plus LLaVA-1.5's "Answer the question using a single word or phrase."
(TextVQA adds LLaVA-1.5's "Reference OCR token: ..." line). Accuracy: ``evalkit.metrics.vqa_accuracy``
(official normalization, leave-one-out over annotators), reported x100 with stderr, overall and per
answer type. A split whose answers are hidden (test-dev) reports no accuracy and writes an EvalAI
submission file instead. GQA has one answer per question: ``exact_match`` is the protocol the
LLaVA/Qwen-VL/InternVL papers report (LLaVA's convert_gqa_for_eval.py, then GQA's eval.py), with the
images joined from a second hub config by id (see :class:`ImageTable`). A sample whose ground truth is
missing is a failed sample of category ``data``, never silently left out of ``n``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.data import DatasetSpec, image_ref
from evalkit.core.errors import UsageError
from evalkit.core.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.core.types import GenerationSettings, ImageRef, Sample, SampleError

from .base import HubTask, Scoring, Task, TaskContext, TaskData, grouped_metric, limited, mean_metrics

VQA_INSTRUCTION = "\nAnswer the question using a single word or phrase."


def answer_texts(cell: Any) -> list[str]:
    """VQAv2's answers column (list of {answer, answer_confidence, answer_id}) or a plain list of strings."""
    if cell is None:
        return []
    return [a["answer"] if isinstance(a, dict) else str(a) for a in cell]


@dataclass
class VQAScoring(Scoring):
    """Official VQA accuracy per sample; the mean overall and per ``metadata[breakdown_key]`` value."""

    # Metadata key whose values split the accuracy into "accuracy.<value>" metrics.
    breakdown_key: str = "answer_type"

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        from evalkit.metrics import vqa_accuracy

        if record.target is None:  # a split whose answers are hidden: nothing to score
            return {}
        if not isinstance(record.target, list) or not record.target:
            raise SampleError("data", f"no ground-truth answers (target {record.target!r})")
        return {"accuracy": vqa_accuracy(str(record.parsed or ""), [str(a) for a in record.target])}

    def aggregate(self, records: list[SampleRecord], task: Task) -> dict[str, MetricValue]:
        out = mean_metrics(records, task.primary_metric, task.percent)
        out.update(grouped_metric(records, self.breakdown_key, task.primary_metric, task))
        return out


@dataclass
class VQATask(HubTask):
    answers_column: str = "answers"
    answer_type_column: str | None = "answer_type"
    hidden_answers: bool = False  # test-dev / test-std: answers are not public
    submission_name: str | None = None  # file name of the EvalAI submission written for hidden splits
    scoring: Scoring = field(default_factory=VQAScoring)

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        columns = {"question": ("string",), "image": ("struct", "binary", "string")}
        return columns if self.hidden_answers else {**columns, self.answers_column: ("list",)}

    def to_sample(self, row: dict[str, Any]) -> Sample:
        question = row["question"]
        if not isinstance(question, str):
            raise TypeError(f"question is {type(question).__name__}, not str")
        if row.get("image") is None:
            raise KeyError("record has no image")  # a bad record, not an undecodable image (image_ref's error)
        answers = [] if self.hidden_answers else answer_texts(row[self.answers_column])
        if not self.hidden_answers and not answers:
            raise SampleError("data", f"record has no ground-truth answers in {self.answers_column!r}")
        meta: dict[str, Any] = {"question_id": row[self.id_column], "raw_question": question}
        if self.answer_type_column and row.get(self.answer_type_column) is not None:
            meta["answer_type"] = row[self.answer_type_column]
        return Sample(
            id=str(row[self.id_column]),
            question=self.prompt(question, row),
            images=[image_ref(row["image"])],
            target=answers or None,
            metadata=meta,
        )

    def prompt(self, question: str, row: dict[str, Any]) -> str:
        """The user text: the question and the short-answer instruction."""
        return question + VQA_INSTRUCTION

    def finalize(self, records: list[SampleRecord], run_dir: Path) -> tuple[dict[str, str], list[str]]:
        if not self.hidden_answers:
            return {}, []
        from evalkit.metrics import normalize_vqa_answer

        rows = [
            {"question_id": r.metadata.get("question_id", r.id), "answer": normalize_vqa_answer(str(r.parsed or ""))}
            for r in sorted(records, key=lambda r: str(r.id))
        ]
        name = self.submission_name or f"{self.name}_submission.json"
        (run_dir / name).write_text(json.dumps(rows), encoding="utf-8")
        note = f"answers are hidden: upload {name} to EvalAI for the score ({len(rows)} answers)"
        return {"submission": name}, [note]


_VQA_GEN = GenerationSettings(max_new_tokens=16)


def vqav2_val() -> VQATask:
    return VQATask(
        name="vqav2_val", kind="vqa", primary_metric="accuracy", generation=_VQA_GEN, version=2,
        description="VQAv2 validation (214,354 questions), official VQA accuracy",
        dataset=DatasetSpec("lmms-lab/VQAv2", split="validation"),
    )


def vqav2_testdev() -> VQATask:
    return VQATask(
        name="vqav2_testdev", kind="vqa", primary_metric="accuracy", generation=_VQA_GEN, version=2,
        description="VQAv2 test-dev (107,394 questions): writes an EvalAI submission file",
        dataset=DatasetSpec("lmms-lab/VQAv2", split="testdev"), hidden_answers=True,
    )


def okvqa_val() -> VQATask:
    return VQATask(
        name="okvqa_val", kind="vqa", primary_metric="accuracy", generation=_VQA_GEN, version=2,
        description="OK-VQA val2014 (5,046 questions), official VQA accuracy",
        dataset=DatasetSpec("lmms-lab/OK-VQA", split="val2014",
                            revision="c9f858961f4095a9aeef615057b0822cce967096"),
    )


# ---------------------------------------------------------------------------------------------
# TextVQA: LLaVA-1.5's prompt carries the dataset's OCR tokens.

OCR_LINE = "\nReference OCR token: "


@dataclass
class TextVQATask(VQATask):
    """TextVQA with LLaVA-1.5's prompt (llava_textvqa_val_v051_ocr.jsonl): the question, a
    "Reference OCR token: a, b, c" line when the image has OCR tokens, then the instruction."""

    ocr_column: str | None = "ocr_tokens"  # None: no OCR line (lmms-eval's default prompt)

    def prompt(self, question: str, row: dict[str, Any]) -> str:
        tokens = [str(t) for t in (row.get(self.ocr_column) or [])] if self.ocr_column else []
        ocr = OCR_LINE + ", ".join(tokens) if tokens else ""
        return question + ocr + VQA_INSTRUCTION


def textvqa_val() -> TextVQATask:
    return TextVQATask(
        name="textvqa_val", kind="vqa", primary_metric="accuracy", generation=_VQA_GEN, version=2,
        description="TextVQA validation (5,000 questions), official VQA accuracy, OCR tokens in the prompt",
        dataset=DatasetSpec("lmms-lab/textvqa", split="validation"), answer_type_column=None,
    )


# ---------------------------------------------------------------------------------------------
# GQA: questions and images live in two configs of lmms-lab/GQA, joined by image id.


class ImageTable:
    """The images of a hub image table (columns ``id``, ``image``), looked up by id lazily.

    Opening reads only the id column (parquet: column chunks of a few KB per shard; arrow:
    memory-mapped) and records, per id, its file and chunk (parquet row group or arrow record
    batch). A lookup reads that one chunk's image column and keeps its images in an LRU cache
    bounded by ``cache_bytes``, so memory stays near that bound whatever the split's size (GQA's
    testdev images are 65 MB and all fit; the 10 GB train images never load at once).
    """

    def __init__(self, files: list[Path], id_column: str = "id", image_column: str = "image",
                 cache_bytes: int = 256 << 20):
        self.files = files
        self.id_column, self.image_column = id_column, image_column
        self.cache_bytes = cache_bytes
        self.chunk_reads = 0  # how many chunks were read (for tests and telemetry)
        self._where: dict[str, tuple[int, int]] = {}
        self._cache: OrderedDict[tuple[int, int], dict[str, bytes]] = OrderedDict()
        self._cached_bytes = 0
        self._arrow: dict[int, Any] = {}
        for f, path in enumerate(files):
            for c, ids in enumerate(self._chunk_ids(f, path)):
                for image_id in ids:
                    self._where.setdefault(str(image_id), (f, c))

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, image_id: object) -> bool:
        return str(image_id) in self._where

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def get(self, image_id: object) -> ImageRef:
        """The image of ``image_id`` (KeyError if the table has none)."""
        key = self._where[str(image_id)]
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            chunk = self._read_chunk(*key)
            self._cache[key] = chunk
            self._cached_bytes += sum(len(b) for b in chunk.values())
            while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= sum(len(b) for b in old.values())
        return ImageRef(data=self._cache[key][str(image_id)])

    def _chunk_ids(self, f: int, path: Path) -> Iterator[list[Any]]:
        if path.suffix == ".parquet":
            pf = self._parquet(path)
            if self.id_column not in pf.schema_arrow.names:
                raise UsageError(f"{path} has no {self.id_column!r} column (has: {', '.join(pf.schema_arrow.names)})")
            for rg in range(pf.metadata.num_row_groups):
                yield pf.read_row_group(rg, columns=[self.id_column]).column(0).to_pylist()
        elif path.suffix == ".arrow":
            for batch in self._batches(f, path):
                yield batch.column(self.id_column).to_pylist()
        else:
            raise UsageError(f"{path}: an image table must be .parquet or .arrow, not {path.suffix}")

    def _read_chunk(self, f: int, c: int) -> dict[str, bytes]:
        path = self.files[f]
        self.chunk_reads += 1
        if path.suffix == ".parquet":
            table = self._parquet(path).read_row_group(c, columns=[self.id_column, self.image_column])
        else:
            table = self._batches(f, path)[c].select([self.id_column, self.image_column])
        out: dict[str, bytes] = {}
        for image_id, cell in zip(table.column(0).to_pylist(), table.column(1).to_pylist()):
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            if data is not None:
                out[str(image_id)] = bytes(data)
        return out

    @staticmethod
    def _parquet(path: Path) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path)

    def _batches(self, f: int, path: Path) -> Any:
        """An arrow file's record batches, memory-mapped (zero-copy: nothing is read into RAM)."""
        if f not in self._arrow:
            import pyarrow as pa

            source = pa.memory_map(str(path))
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                table = pa.ipc.open_file(source).read_all()
            self._arrow[f] = table.to_batches()
        return self._arrow[f]


@dataclass
class GQAScoring(VQAScoring):
    """One answer per question. ``exact_match`` (primary): GQA's protocol as the papers report it
    (``evalkit.metrics.gqa_exact_match``). ``vqa_normalized_match``: exact match of the
    ``normalize_vqa_answer`` forms (evalkit's GQA accuracy before task version 2), kept for comparison."""

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        from evalkit.metrics import gqa_exact_match, normalize_vqa_answer

        if not isinstance(record.target, str) or not record.target.strip():
            raise SampleError("data", f"no ground-truth answer (target {record.target!r})")
        pred = str(record.parsed or "")
        return {"exact_match": gqa_exact_match(pred, record.target),
                "vqa_normalized_match": float(normalize_vqa_answer(pred) == normalize_vqa_answer(record.target))}


@dataclass
class GQATask(VQATask):
    """GQA: one answer per question, scored by GQA's exact match (see :class:`GQAScoring`).

    Rows come from ``dataset`` (the instructions config); each row's image is the row of the
    ``images`` config whose ``id`` equals the row's ``imageId`` (an :class:`ImageTable`, read
    lazily). A question whose image is missing is recorded as a bad record.
    """

    images: DatasetSpec | None = None
    image_cache_bytes: int = 256 << 20

    def load(self, ctx: TaskContext) -> TaskData:
        from evalkit.core.data import open_dataset

        if self.images is None:
            raise UsageError(f"task {self.name} has no image config")
        questions = self.open(ctx)
        image_source = open_dataset(self.images, data_dir=ctx.data_dir, path=ctx.data_path)
        table = ImageTable(image_source.files, cache_bytes=self.image_cache_bytes)
        n = limited(len(questions), ctx.limit)
        info = questions.describe()
        # The images are part of what is evaluated: the hash covers both tables.
        both = f"{info['content_hash']}:{image_source.content_hash()}".encode()
        info["content_hash"] = hashlib.sha256(both).hexdigest()[:16]
        rows = ({**row, "image": _lookup(table, row.get("imageId"))} for row in questions.rows())
        return TaskData(n=n, dataset=DatasetInfo(**info), samples=self._stream(rows, n))

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return {"question": ("string",), "answer": ("string",), "imageId": ()}

    def to_sample(self, row: dict[str, Any]) -> Sample:
        if row["image"] is None:
            raise KeyError(f"imageId {row.get('imageId')!r} is not in {self.images.config if self.images else ''}")
        question, answer = row["question"], row["answer"]
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            raise SampleError("data", "record has no ground-truth answer")
        if not isinstance(question, str) or not isinstance(answer, str):
            raise TypeError("question and answer must be strings")
        types = row.get("types") or {}
        meta: dict[str, Any] = {"question_id": row[self.id_column], "image_id": row.get("imageId"),
                                "raw_question": question, "structural": types.get("structural")}
        return Sample(id=str(row[self.id_column]), question=self.prompt(question, row),
                      images=[row["image"]], target=answer, metadata=meta)



def _lookup(table: ImageTable, image_id: Any) -> ImageRef | None:
    return table.get(image_id) if image_id is not None and image_id in table else None


def gqa_testdev() -> GQATask:
    revision = "af87823c67247395481256d84ed3d6da4b11ef20"
    return GQATask(
        name="gqa_testdev", kind="vqa", primary_metric="exact_match", generation=_VQA_GEN, version=2,
        description="GQA test-dev balanced (12,578 questions, 398 images), GQA eval.py exact match",
        dataset=DatasetSpec("lmms-lab/GQA", split="testdev", config="testdev_balanced_instructions",
                            revision=revision),
        images=DatasetSpec("lmms-lab/GQA", split="testdev", config="testdev_balanced_images", revision=revision),
        id_column="id", answer_type_column=None, scoring=GQAScoring(breakdown_key="structural"),
    )
