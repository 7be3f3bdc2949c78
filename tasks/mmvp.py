"""MMVP (Tong et al., "Eyes Wide Shut?", CVPR 2024): 150 CLIP-blind pairs, 300 two-option questions.

Data: the hub repository ``MMVP/MMVP`` is not parquet. ``Questions.csv`` has the columns ``Index``
(1..300), ``Question``, ``Options`` (``"(a) Long (b) Short"``) and ``Correct Answer`` (``"(a)"``);
the image of row ``i`` is ``MMVP Images/<i>.jpg``. Consecutive rows form a pair: (1, 2), (3, 4), ...
Read from ``DIR/MMVP/MMVP/`` under ``--data-dir`` (or the hub, which downloads the whole small repo).

Ground-truth corrections (on by default; ``mmvp_original`` keeps the published labels): the
labels of two pairs are swapped in the published CSV, reported in tsb0601/MMVP issues #14 and #30
and verified in lmms-eval issue #1018 (lmms-eval applies the same fix in code and in its
``lmms-lab-eval/MMVP`` copy): Index 99 -> (b) short tusks, 100 -> (a) long tusks, 279 -> (b)
sitting, 280 -> (a) standing. A correction is applied only when the row's question is the one it
was made for, so a re-ordered or different CSV is never "corrected".

Prompt: ``Question + "\\n" + Options`` and the choice suffix. Scoring (``ChoiceScoring``):
``accuracy`` per question and ``pair_accuracy``, the paper's headline number (a pair counts only if
both its questions are right). The paper graded free-form answers with GPT-4; here the chosen
option is read with ``evalkit.metrics.extract_choice``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.data import DatasetSpec, image_ref
from evalkit.core.errors import UsageError
from evalkit.core.results import DatasetInfo
from evalkit.core.types import GenerationSettings, Sample, SampleError

from .base import HubTask, Scoring, TaskContext, TaskData, limited
from .choice import CHOICE_SUFFIX, ChoiceScoring

IMAGE_FOLDERS = ("MMVP Images", "MMVP Imgaes")  # the second: the spelling of the authors' eval script

# Index -> (words the question must contain, corrected option index). See the module docstring.
CORRECTIONS: dict[int, tuple[str, int]] = {
    99: ("tusks", 1),
    100: ("tusks", 0),
    279: ("standing or sitting", 1),
    280: ("standing or sitting", 0),
}

_OPTION = re.compile(r"\(([a-z])\)\s*", re.IGNORECASE)


def parse_options(text: str) -> list[str]:
    """``"(a) Long (b) Short"`` -> ``["Long", "Short"]``. ValueError unless lettered a, b, ... in order."""
    parts = _OPTION.split(str(text).strip())
    if len(parts) < 5 or parts[0].strip():
        raise ValueError(f"options {text!r} are not of the form '(a) ... (b) ...'")
    letters, texts = parts[1::2], [p.strip() for p in parts[2::2]]
    if [c.lower() for c in letters] != [chr(ord("a") + i) for i in range(len(letters))] or not all(texts):
        raise ValueError(f"options {text!r} are not lettered (a), (b), ... in order")
    return texts


def parse_answer(text: str, n_options: int) -> int:
    """``"(b)"`` (or ``"b"``, ``"(b) Short"``) -> 1. ValueError when it names no option."""
    m = re.match(r"\s*\(?([a-z])\)?(?:\s|$)", str(text), re.IGNORECASE)
    index = ord(m.group(1).lower()) - ord("a") if m else -1
    if not 0 <= index < n_options:
        raise ValueError(f"correct answer {text!r} names none of the {n_options} options")
    return index


def image_folder(root: Path) -> Path:
    """The folder of MMVP's images inside the dataset folder ``root``."""
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    raise UsageError(f"no '{IMAGE_FOLDERS[0]}' folder next to Questions.csv in {root}; "
                     "download the whole MMVP/MMVP repository (CSV and images)")


@dataclass
class MMVPTask(HubTask):
    """MMVP's 300 questions; ``corrected`` applies the published ground-truth corrections."""

    corrected: bool = True
    scoring: Scoring = field(default_factory=ChoiceScoring)

    def load(self, ctx: TaskContext) -> TaskData:
        source = self.open(ctx)
        folder = image_folder(source.root).relative_to(source.root).as_posix()
        n = limited(len(source), ctx.limit)
        if n < len(source) and n >= 2:
            n -= n % 2  # --limit keeps whole pairs: a lone question would count as a "pair"
        rows = (_clean_keys(row) for row in source.rows())
        rows = ({**row, "image": source.image_ref(f"{folder}/{str(row.get('Index', '')).strip()}.jpg")}
                for row in rows)
        return TaskData(n=n, dataset=DatasetInfo(**source.describe()), samples=self._stream(rows, n))

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return dict.fromkeys(("Index", "Question", "Options", "Correct Answer"), ())

    def to_sample(self, row: dict[str, Any]) -> Sample:
        index = int(str(row["Index"]).strip())
        meta: dict[str, Any] = {"index": index, "pair_id": (index - 1) // 2}
        try:
            question, options_text = str(row["Question"]).strip(), " ".join(str(row["Options"]).split())
            options = parse_options(options_text)
            original = parse_answer(row["Correct Answer"], len(options))
        except (KeyError, ValueError) as exc:
            # Keep the pair id, so that the other question of this pair leaves pair_accuracy too.
            error = SampleError("bad_record", f"{type(exc).__name__}: {exc}")
            return Sample(id=str(index), question="", metadata=meta, load_error=error)
        target, changed = original, False
        if self.corrected and index in CORRECTIONS:
            words, fixed = CORRECTIONS[index]
            if words in question.lower():
                target, changed = fixed, fixed != original
        # raw_question: the bare question, for prompt protocols that lay the options out their own way.
        meta.update(options=options, original_answer=original, corrected=changed, raw_question=question)
        return Sample(
            id=str(index),
            question=f"{question}\n{options_text}{CHOICE_SUFFIX}",
            images=[image_ref(row["image"])],
            target=target,
            metadata=meta,
        )


def _clean_keys(row: dict[str, Any]) -> dict[str, Any]:
    """CSV header names without a byte-order mark or padding (Excel-saved CSVs have both)."""
    return {str(k).lstrip("\ufeff").strip(): v for k, v in row.items()}


_MMVP_DATA = DatasetSpec("MMVP/MMVP", split="test", data_files="Questions.csv")
_MMVP_GEN = GenerationSettings(max_new_tokens=16)


def mmvp() -> MMVPTask:
    return MMVPTask(
        name="mmvp", kind="choice", primary_metric="pair_accuracy", generation=_MMVP_GEN,
        description="MMVP (300 questions, 150 pairs) with the published label corrections; accuracy, pair accuracy",
        dataset=_MMVP_DATA, id_column="Index",
    )


def mmvp_original() -> MMVPTask:
    return MMVPTask(
        name="mmvp_original", kind="choice", primary_metric="pair_accuracy", generation=_MMVP_GEN,
        description="MMVP with the labels as published (2 pairs known to be swapped); accuracy, pair accuracy",
        dataset=_MMVP_DATA, id_column="Index", corrected=False,
    )
