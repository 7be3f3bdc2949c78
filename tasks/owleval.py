"""OwlEval: mPLUG-Owl's open-ended instruction set, 82 questions on 50 images, single- and multi-turn.

Data: the ``OwlEval`` folder of the X-PLUG/mPLUG-Owl GitHub repository, read from
``--data-dir DIR`` (``DIR/OwlEval``, ``DIR/X-PLUG/mPLUG-Owl/OwlEval``, ``DIR/mPLUG-Owl/OwlEval`` or DIR
itself). Layout: ``questions.jsonl`` (image, question_id, question, ability "a,b,e", category
["single_turn"] / ["single_turn", "multi_turn"] / ["multi_turn"]), ``cases/<image>`` and six model
answer files ``answer/*.jsonl`` (image, question_id, question, answer, model_id).

Dialogues: a question whose category is only multi_turn continues the dialogue of the question
before it on the same image. Each turn is asked with the model's OWN earlier answers as history
(``Sample.history``): ``load`` yields every dialogue's first turn, and :meth:`OwlEvalTask.followups`
yields the next turns once the earlier answers are in the store (the runner calls it after each
pass). A turn whose earlier turn has no answer is recorded as a generation error.

Scoring (an LLM judge, :mod:`evalkit.backends.judge`): each answer is reviewed against a reference answer
file (default mPLUG-Owl 7B's, ``EVALKIT_OWLEVAL_REFERENCE`` picks another file in ``answer/`` or any
path), LLaVA-Bench style: reference = Assistant 1, model = Assistant 2, 1-10 each. Relative score
= mean(model) / mean(reference) x 100 over the judged questions, overall, per ability (a-f) and per
turn type, with a delta-method stderr. Judge model, prompt hash and raw judgement are stored in each
sample's ``metadata["judge"]``. Without a judge the run completes with scores pending (null).
Human grades (A-D, the paper's protocol): ``evalkit rate export|import`` (evalkit.commands.rating).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError
from evalkit.core.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.core.types import GenerationSettings, ImageRef, Sample, SampleError, Turn, confined_path

from .base import Task, TaskContext, TaskData, bad_record, limited

REPO = "X-PLUG/mPLUG-Owl"
FOLDER = "OwlEval"
ABILITIES: dict[str, str] = {
    "a": "instruction_understanding", "b": "visual_understanding", "c": "ocr",
    "d": "knowledge_transfer", "e": "reasoning", "f": "multi_turn_dialogue",
}
ANSWER_FILES = ("mPLUG_Owl_7b_answer.jsonl", "llava_13b_answer.jsonl", "minigpt4_13b_answer.jsonl",
                "MMreact_answer.jsonl", "blip2_13b_answer.jsonl", "openflamingo_answer.jsonl")
DEFAULT_REFERENCE = ANSWER_FILES[0]
ENV_REFERENCE = "EVALKIT_OWLEVAL_REFERENCE"
ANSWERS_ARTIFACT = "owleval_answers.jsonl"


@dataclass(frozen=True)
class Question:
    """One row of questions.jsonl, placed in its dialogue (``dialogue`` = id of the dialogue's first turn)."""

    question_id: int
    image: str
    text: str
    abilities: tuple[str, ...]
    single_turn: bool
    multi_turn: bool
    dialogue: int
    turn: int  # 1-based position in the dialogue


def find_root(data_dir: Path | None, data_path: Path | None = None) -> Path:
    """The OwlEval folder (the one holding questions.jsonl) under --data-dir."""
    if data_path is not None:
        candidates = [Path(data_path), Path(data_path) / FOLDER]
    elif data_dir is not None:
        base = Path(data_dir)
        candidates = [base / FOLDER, base / REPO / FOLDER, base / "mPLUG-Owl" / FOLDER, base]
    else:
        raise UsageError(f"owleval reads a local copy: clone github.com/{REPO} and pass --data-dir <clone> "
                         f"(the folder holding {FOLDER}/questions.jsonl)")
    for folder in candidates:
        if (folder / "questions.jsonl").is_file():
            return folder
    raise UsageError(f"no {FOLDER}/questions.jsonl under {candidates[0].parent if data_path is None else data_path}; "
                     f"pass --data-dir <clone of {REPO}> (the folder holding {FOLDER}/)")


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value or the JSONDecodeError) for each non-empty line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, exc


def _flags(row: dict[str, Any]) -> tuple[bool, bool]:
    """(single_turn, multi_turn) from ``category`` (or the older ``type``); tolerant of the shipped
    file's typo ``["]single_turn"]``."""
    cats = row.get("category", row.get("type"))
    names = [cats] if isinstance(cats, str) else [str(c) for c in (cats or [])]
    single = any("single" in c for c in names)
    multi = any("multi" in c for c in names)
    if not single and not multi:
        raise ValueError(f"category {cats!r} names neither single_turn nor multi_turn")
    return single, multi


def read_questions(root: Path) -> list[Question | Sample]:
    """questions.jsonl in file order, dialogues linked; an unusable row becomes a bad-record Sample."""
    out: list[Question | Sample] = []
    previous: Question | None = None
    for lineno, row in _read_jsonl(root / "questions.jsonl"):
        try:
            if isinstance(row, Exception) or not isinstance(row, dict):
                raise ValueError(f"line {lineno} is not a JSON object")
            qid, image, text = int(row["question_id"]), str(row["image"]), row["question"]
            if not isinstance(text, str) or not text.strip():
                raise TypeError("question is not a non-empty string")
            abilities = tuple(a.strip() for a in str(row.get("ability", "")).split(",") if a.strip())
            single, multi = _flags(row)
        except (KeyError, TypeError, ValueError) as exc:
            qid_text = str(row.get("question_id", f"line-{lineno}")) if isinstance(row, dict) else f"line-{lineno}"
            out.append(bad_record(qid_text, exc))
            previous = None
            continue
        continues = multi and not single and previous is not None and previous.image == image
        dialogue, turn = (previous.dialogue, previous.turn + 1) if continues and previous else (qid, 1)
        question = Question(qid, image, text, abilities, single, multi, dialogue, turn)
        out.append(question)
        previous = question
    return out


def read_answers(path: Path) -> dict[int, tuple[str, str]]:
    """An answer file: question_id -> (answer, model_id)."""
    answers: dict[int, tuple[str, str]] = {}
    for lineno, row in _read_jsonl(path):
        if isinstance(row, Exception) or not isinstance(row, dict) or "question_id" not in row or "answer" not in row:
            raise UsageError(f"{path}:{lineno} is not an answer record (question_id, answer, model_id)")
        answers[int(row["question_id"])] = (str(row["answer"]), str(row.get("model_id", path.stem)))
    return answers


def _source() -> Any:
    from evalkit.core.data import DatasetSpec

    return DatasetSpec(REPO, split=FOLDER)


def _ratio(model: list[float], reference: list[float]) -> MetricValue:
    """mean(model) / mean(reference) x 100 with a delta-method stderr (paired samples)."""
    n = len(model)
    if n == 0 or sum(reference) == 0:
        return MetricValue(value=None, stderr=None, n=n)
    ratio = sum(model) / sum(reference)
    stderr = 0.0  # as evalkit.metrics.mean_stderr: 0 below two samples
    if n > 1:
        mean_ref = sum(reference) / n
        resid = sum((m - ratio * r) ** 2 for m, r in zip(model, reference))
        stderr = round(100 * math.sqrt(resid / (n * (n - 1))) / mean_ref, 4)
    return MetricValue(value=round(100 * ratio, 4), stderr=stderr, n=n)


def _mean(values: list[float]) -> MetricValue:
    from evalkit.metrics import mean_stderr

    if not values:
        return MetricValue(value=None, stderr=None, n=0)
    mean, se = mean_stderr(values)
    return MetricValue(value=round(100 * mean, 4), stderr=round(100 * se, 4), n=len(values))


@dataclass
class OwlEvalTask(Task):
    # Reference answer file: a name in answer/ or a path; None: $EVALKIT_OWLEVAL_REFERENCE, else mPLUG-Owl 7B.
    reference: str | None = None
    # The judge; None: from the EVALKIT_JUDGE_* environment at scoring time (no judge: scores pending).
    judge_config: Any = None  # evalkit.backends.judge.JudgeConfig
    multi_turn: bool = True  # the runner asks followups() for the later turns of each dialogue
    # Where the data comes from (for `evalkit list tasks`): a GitHub repository, read only from a local clone.
    dataset: Any = field(default_factory=lambda: _source())
    _questions: list[Question] = field(default_factory=list, repr=False)
    _root: Path | None = field(default=None, repr=False)
    _refs: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)
    _ref_file: str = field(default=DEFAULT_REFERENCE, repr=False)
    _judges: dict[Any, Any] = field(default_factory=dict, repr=False)

    # -- data ------------------------------------------------------------------------------------
    def load(self, ctx: TaskContext) -> TaskData:
        root = find_root(ctx.data_dir, ctx.data_path)
        rows = read_questions(root)
        ref_path = self.reference_path(root)
        if not ref_path.is_file() and self.judge() is not None:
            raise UsageError(f"reference answers {ref_path} not found; set {ENV_REFERENCE} to a file in "
                             f"{root / 'answer'} or a path")
        refs = read_answers(ref_path) if ref_path.is_file() else {}
        total = len(rows)
        n = limited(total, ctx.limit)
        rows = rows[:n]
        self._root = root
        self._questions = [q for q in rows if isinstance(q, Question)]
        self._refs, self._ref_file = refs, ref_path.name
        info = DatasetInfo(id=REPO, split=FOLDER, location=str(root), n=total,
                           content_hash=self._content_hash(root, ref_path))
        first = (r if isinstance(r, Sample) else self.sample(r, []) for r in rows
                 if isinstance(r, Sample) or r.turn == 1)
        return TaskData(n=n, dataset=info, samples=first)

    def reference_path(self, root: Path) -> Path:
        choice = self.reference or os.environ.get(ENV_REFERENCE, "").strip() or DEFAULT_REFERENCE
        path = Path(choice).expanduser()
        return path if path.is_file() or path.is_absolute() or "/" in choice else root / "answer" / choice

    @staticmethod
    def _content_hash(root: Path, ref_path: Path) -> str:
        h = hashlib.sha256((root / "questions.jsonl").read_bytes())
        if ref_path.is_file():
            h.update(ref_path.read_bytes())
        cases = root / "cases"
        for image in sorted(cases.iterdir()) if cases.is_dir() else []:
            h.update(image.name.encode())
            h.update(image.read_bytes())
        return h.hexdigest()[:16]

    def sample(self, q: Question, history: list[Turn]) -> Sample:
        """The Sample for one question; ``history`` holds the model's own earlier turns of the dialogue."""
        assert self._root is not None
        try:  # an image name such as "../../etc/passwd" fails the sample; the file is never opened
            image, error = confined_path(self._root / "cases", q.image), None
        except SampleError as exc:
            image, error = self._root / "cases", exc
        ref = self._refs.get(q.question_id)
        earlier = [p.text for p in self._questions if p.dialogue == q.dialogue and p.turn < q.turn]
        meta: dict[str, Any] = {
            "question_id": q.question_id, "question": q.text, "image": q.image, "image_file": str(image.resolve()),
            "abilities": list(q.abilities), "single_turn": q.single_turn, "multi_turn": q.multi_turn,
            "dialogue": q.dialogue, "turn": q.turn, "earlier_questions": earlier,
            "reference_file": self._ref_file, "reference_model": ref[1] if ref else None,
        }
        return Sample(id=str(q.question_id), question=q.text, images=[ImageRef(path=str(image))],
                      target=ref[0] if ref else None, metadata=meta, history=history, load_error=error)

    def followups(self, records: list[SampleRecord]) -> list[Sample]:
        """The next turn of every dialogue whose earlier turns are all stored (runner hook, see module doc)."""
        stored = {r.id: r for r in records}
        dialogues: dict[int, list[Question]] = {}
        for q in self._questions:
            dialogues.setdefault(q.dialogue, []).append(q)
        out = []
        for turns in dialogues.values():
            k = next((i for i, q in enumerate(turns) if str(q.question_id) not in stored), None)
            if not k:  # complete, or its first turn is still to come from load()
                continue
            history: list[Turn] = []
            missing: Question | None = None
            for q in turns[:k]:
                rec = stored[str(q.question_id)]
                answer = rec.parsed if isinstance(rec.parsed, str) and rec.output is not None else rec.output
                if answer is None:
                    missing = q
                    break
                history += [Turn("user", q.text), Turn("assistant", answer)]
            sample = self.sample(turns[k], history)
            if missing is not None:
                sample.history = []
                sample.load_error = SampleError(
                    "generation", f"turn {missing.turn} of this dialogue (question {missing.question_id}) has no "
                                  "answer, so this turn has no history to continue")
            out.append(sample)
        return out

    # -- scoring ---------------------------------------------------------------------------------
    def judge(self) -> Any:
        """The Judge to use, or None when no judge is configured."""
        from evalkit.backends.judge import Judge, JudgeConfig

        config = self.judge_config or JudgeConfig.from_env()
        if config is None:
            return None
        if config not in self._judges:
            self._judges[config] = Judge(config)
        return self._judges[config]

    def review(self, record: SampleRecord, with_images: bool) -> Any:
        """The pairwise review of one record (reference = Assistant 1, model = Assistant 2)."""
        from evalkit.backends.openai import encode_image
        from evalkit.backends.judge import PairwiseReview

        meta = record.metadata
        if not isinstance(record.target, str):
            raise SampleError("judge", f"no reference answer for question {meta.get('question_id')} in "
                                       f"{meta.get('reference_file')}")
        answer = record.parsed if isinstance(record.parsed, str) else (record.output or "")
        earlier = [str(q) for q in meta.get("earlier_questions") or []]
        context = ""
        if earlier:
            listed = "\n".join(f"{i}. {q}" for i, q in enumerate(earlier, 1))
            context = f"This question continues a conversation about the image. The user's earlier questions:\n{listed}"
        images: tuple[Any, ...] = ()
        if with_images:
            try:
                images = (encode_image(ImageRef(path=str(meta.get("image_file"))), None),)
            except SampleError as exc:
                raise SampleError("judge", f"the judge needs the image: {exc.message}") from None
        return PairwiseReview(question=str(meta.get("question", "")), answer_1=record.target, answer_2=answer,
                              context=context, images=images)

    def score_records(self, records: list[SampleRecord]) -> list[dict[str, float | None] | SampleError]:
        """Judge many records in one concurrent round (runner hook); a failure is that record's SampleError."""
        judge = self.judge()
        if judge is None:
            for r in records:
                r.metadata["judge"] = {"status": "pending"}
            return [{} for _ in records]
        outcomes: list[dict[str, float | None] | SampleError] = [{} for _ in records]
        reviews: list[tuple[int, Any]] = []
        for i, r in enumerate(records):
            try:
                reviews.append((i, self.review(r, judge.config.with_images)))
            except SampleError as exc:
                r.metadata["judge"] = {"status": "failed", "error": exc.message}
                outcomes[i] = exc
        for (i, _), verdict in zip(reviews, judge.review([rv for _, rv in reviews])):
            records[i].metadata["judge"] = {"status": "judged" if verdict.scores else "failed", **verdict.to_json()}
            if verdict.scores is None:
                outcomes[i] = SampleError("judge", verdict.error or "no verdict")
            else:
                reference, model = verdict.scores
                outcomes[i] = {"model_score": model / 10, "reference_score": reference / 10}
        return outcomes

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        outcome = self.score_records([record])[0]
        if isinstance(outcome, SampleError):
            raise outcome
        return outcome

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        judged = [r for r in records if r.error is None and r.scores.get("model_score") is not None
                  and r.scores.get("reference_score") is not None]

        def ratio(group: list[SampleRecord]) -> MetricValue:
            return _ratio([float(r.scores["model_score"] or 0) for r in group],
                          [float(r.scores["reference_score"] or 0) for r in group])

        out = {"relative_score": ratio(judged)}
        for letter, name in ABILITIES.items():
            out[f"relative_score.{name}"] = ratio([r for r in judged if letter in (r.metadata.get("abilities") or [])])
        out["relative_score.single_turn"] = ratio([r for r in judged if r.metadata.get("single_turn")])
        out["relative_score.multi_turn"] = ratio([r for r in judged if r.metadata.get("multi_turn")])
        out["model_score"] = _mean([float(r.scores["model_score"] or 0) for r in judged])
        out["reference_score"] = _mean([float(r.scores["reference_score"] or 0) for r in judged])
        return out

    def finalize(self, records: list[SampleRecord], run_dir: Path) -> tuple[dict[str, str], list[str]]:
        """Writes the answers in OwlEval's answer-file format; notes on the judge and pending scores."""
        rows = sorted((r for r in records if r.output is not None), key=lambda r: int(r.metadata.get("question_id", 0)))
        with open(run_dir / ANSWERS_ARTIFACT, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"image": r.metadata.get("image"), "question_id": r.metadata.get("question_id"),
                                     "question": r.metadata.get("question"), "answer": r.parsed if isinstance(
                                         r.parsed, str) else r.output, "model_id": run_dir.name},
                                    ensure_ascii=False) + "\n")
        status = [str((r.metadata.get("judge") or {}).get("status", "")) for r in records]
        notes = []
        if "pending" in status:
            notes.append(f"scores pending for {status.count('pending')} answers: no judge configured; set "
                         "EVALKIT_JUDGE_MODEL and EVALKIT_JUDGE_URL (or --judge/--judge-url) and run `evalkit score "
                         f"{run_dir} --write`, or grade by hand with `evalkit rate export`")
        judge = self.judge()
        if judge is not None:
            failed = sum(1 for r in records if r.error_category == "judge" or "SampleError: judge" in (r.error or ""))
            ref = next((r.metadata.get("reference_model") for r in records if r.metadata.get("reference_model")), None)
            notes.append(f"judge: {judge.config.describe()}; reference answers: {ref} ({self._ref_file}); "
                         f"{status.count('judged')} judged, {failed} judge failures excluded")
        return {"answers": ANSWERS_ARTIFACT}, notes


def owleval() -> OwlEvalTask:
    return OwlEvalTask(
        name="owleval", kind="open", primary_metric="relative_score",
        generation=GenerationSettings(max_new_tokens=512),
        description="OwlEval (mPLUG-Owl): 82 open-ended questions on 50 images, single and multi-turn; "
                    "LLM-judge score relative to a reference answer file (github.com/X-PLUG/mPLUG-Owl)",
    )
