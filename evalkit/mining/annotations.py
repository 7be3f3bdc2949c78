"""What a person writes for a mined pair, its validation, and its store (``OUT/annotations.json``).

Per pair: one MMVP question with two options and, per image, the option that is right for it (different for the
two images: that is what makes the pair test the difference); optionally the MMVP-VLM form, a statement per image
(true of its own image, e.g. "The dog is facing left") and the visual pattern (``Type``, e.g. ``Orientation``);
or ``drop``, to leave the pair out of the benchmark. A pair with nothing written is pending.

The store only grows: importing a file merges its written and dropped pairs into it and leaves every other pair as
it was, so a partial or second file never erases earlier work.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from evalkit.core.errors import UsageError

ANNOTATIONS_FILE = "annotations.json"
FORMAT = "evalkit-mine-annotations/1"
TRUE = frozenset({"1", "x", "y", "yes", "true", "drop"})
FALSE = frozenset({"", "0", "n", "no", "false"})


@dataclass(frozen=True)
class Annotation:
    type: str = ""
    question: str = ""
    option_a: str = ""
    option_b: str = ""
    answer_1: str = ""  # "a" or "b": the right option for the pair's first image
    answer_2: str = ""
    statement_1: str = ""  # MMVP-VLM: a statement true of the first image
    statement_2: str = ""
    drop: bool = False

    @property
    def written(self) -> bool:
        return not self.drop and bool(self.question)

    @property
    def has_statements(self) -> bool:
        return self.written and bool(self.statement_1 and self.statement_2 and self.type)

    def options_text(self) -> str:
        return f"(a) {self.option_a} (b) {self.option_b}"


COLUMNS = tuple(f.name for f in fields(Annotation))  # the columns a filled sheet carries, besides "pair"


def parse_row(cells: dict[str, str]) -> Annotation | None:
    """One sheet row's annotation cells -> the annotation (``None``: nothing written). ValueError names the fault."""
    from evalkit.tasks.mmvp import parse_answer, parse_options

    text = {c: " ".join(str(cells.get(c) or "").split()) for c in COLUMNS}
    drop = text.pop("drop").lower()
    if drop not in TRUE | FALSE:
        raise ValueError(f"drop {drop!r} is neither empty nor one of {', '.join(sorted(TRUE))}")
    if drop in FALSE and not any(text.values()):
        return None
    if drop in TRUE:
        return Annotation(**text, drop=True)
    missing = [c for c in ("question", "option_a", "option_b", "answer_1", "answer_2") if not text[c]]
    if missing:
        raise ValueError(f"{', '.join(missing)} missing (a pair needs a question, two options and the right option "
                         "for each image; or mark it drop)")
    if text["option_a"].lower() == text["option_b"].lower():
        raise ValueError(f"the two options are the same ({text['option_a']!r})")
    try:
        readable = parse_options(f"(a) {text['option_a']} (b) {text['option_b']}") == [text["option_a"],
                                                                                     text["option_b"]]
    except ValueError:
        readable = False
    if not readable:  # MMVP's Options cell must read back as these two options
        raise ValueError("an option must not itself contain a letter in brackets such as '(b)'")
    for c in ("answer_1", "answer_2"):
        try:
            text[c] = "ab"[parse_answer(text[c], 2)]
        except ValueError:
            raise ValueError(f"{c} {text[c]!r} is not a or b") from None
    if text["answer_1"] == text["answer_2"]:
        raise ValueError(f"both images have the answer ({text['answer_1']}); a pair's images need different answers")
    statements = [bool(text["statement_1"]), bool(text["statement_2"])]
    if any(statements) and not all(statements):
        raise ValueError("one statement written: MMVP-VLM needs a statement for each image (or none)")
    if all(statements) and not text["type"]:
        raise ValueError("statements need a type (the visual pattern, e.g. Orientation)")
    if any(ch in text["type"] for ch in "/\\") or text["type"].startswith("."):
        raise ValueError(f"type {text['type']!r} must not contain slashes or start with a dot (it names a folder)")
    return Annotation(**text)


def read_annotations(out: Path) -> dict[int, Annotation]:
    path = Path(out) / ANNOTATIONS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {int(k): Annotation(**v) for k, v in data["pairs"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is unreadable ({exc}); restore it from a backup or import the sheets again") from exc


def write_annotations(out: Path, annotations: dict[int, Annotation]) -> Path:
    from evalkit.mining.embed import write_atomic

    path = Path(out) / ANNOTATIONS_FILE
    data = {"format": FORMAT, "pairs": {str(k): asdict(a) for k, a in sorted(annotations.items())}}
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))
    return path
