"""VQA-style tasks: VQAv2, OK-VQA and TextVQA (official VQA accuracy), GQA (exact match).

Prompt: the question plus LLaVA-1.5's "Answer the question using a single word or phrase."
(TextVQA adds LLaVA-1.5's "Reference OCR token: ..." line). Accuracy: ``evalkit.metrics.vqa_accuracy``
(official normalization, leave-one-out over annotators), reported x100 with stderr, overall and per
answer type. A split whose answers are hidden (test-dev) reports no accuracy and writes an EvalAI
submission file instead. GQA has one answer per question: exact match of the normalized answers,
with the images joined from a second hub config by id (see :class:`ImageTable`).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.data import DatasetSpec, image_ref
from evalkit.errors import UsageError
from evalkit.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.types import GenerationSettings, ImageRef, Sample

from .base import HubTask, TaskContext, TaskData, limited

VQA_INSTRUCTION = "\nAnswer the question using a single word or phrase."


def answer_texts(cell: Any) -> list[str]:
    """VQAv2's answers column (list of {answer, answer_confidence, answer_id}) or a plain list of strings."""
    if cell is None:
        return []
    return [a["answer"] if isinstance(a, dict) else str(a) for a in cell]


@dataclass
class VQATask(HubTask):
    answers_column: str = "answers"
    answer_type_column: str | None = "answer_type"
    hidden_answers: bool = False  # test-dev / test-std: answers are not public
    submission_name: str | None = None  # file name of the EvalAI submission written for hidden splits
    # Metadata key whose values split the accuracy into "accuracy.<value>" metrics.
    breakdown_key: str = "answer_type"

    def to_sample(self, row: dict[str, Any]) -> Sample:
        question = row["question"]
        if not isinstance(question, str):
            raise TypeError(f"question is {type(question).__name__}, not str")
        answers = [] if self.hidden_answers else answer_texts(row[self.answers_column])
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

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        from evalkit.metrics import vqa_accuracy

        if not record.target or not isinstance(record.target, list):
            return {}
        return {"accuracy": vqa_accuracy(str(record.parsed or ""), [str(a) for a in record.target])}

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        out = super().aggregate(records)
        by_type: dict[str, list[SampleRecord]] = {}
        for r in records:
            if r.metadata.get(self.breakdown_key) is not None:
                by_type.setdefault(str(r.metadata[self.breakdown_key]), []).append(r)
        if len(by_type) > 1:
            for answer_type, group in sorted(by_type.items()):
                out[f"accuracy.{answer_type}"] = super().aggregate(group)["accuracy"]
        return out

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
        name="vqav2_val", kind="vqa", primary_metric="accuracy", generation=_VQA_GEN,
        description="VQAv2 validation (214,354 questions), official VQA accuracy",
        dataset=DatasetSpec("lmms-lab/VQAv2", split="validation"),
    )


def vqav2_testdev() -> VQATask:
    return VQATask(
        name="vqav2_testdev", kind="vqa", primary_metric="accuracy", generation=_VQA_GEN,
        description="VQAv2 test-dev (107,394 questions): writes an EvalAI submission file",
        dataset=DatasetSpec("lmms-lab/VQAv2", split="testdev"), hidden_answers=True,
    )
