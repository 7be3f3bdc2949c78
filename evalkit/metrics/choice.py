"""Which option of a multiple-choice question a free-text answer picked.

Letters are tried first, in tiers from most to least explicit; the first tier that finds any
in-range letter decides (and a tier that finds two different letters makes the answer
ambiguous: None). The option texts are the fallback.

1. The whole answer is a letter: ``"B"``, ``"(a)"``, ``"a)"``, ``"B."``.
2. An answer phrase: ``"Answer: B"``, ``"The answer is (b)."``, ``"option b"``, ``"choice C"``.
3. A leading letter with a delimiter (``"A. Open"``, ``"(b) the dog"``, ``"c: red"``) or a
   bracketed letter anywhere (``"I think (b) is right"``); ``"(a) is wrong, (b) is right"`` is
   ambiguous.
4. A standalone capital letter anywhere: ``"I'd pick B."``.
5. An option's text as whole words, case-insensitive (a match inside a longer matching
   option's match does not count, so "red" does not compete with "red car").

The one-letter English words ``a``/``A``/``I`` followed by another word are read as words, not
letters, unless bracketed or right after "option"/"choice": "There is a dog facing right" and
"A dog" never mean option A (lmms-eval's MMVP scorer reads them as A). Lowercase letters
count only in tiers 1-3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.core.results import SampleRecord

_MARKDOWN = re.compile(r"[*`]+")
_WHOLE = re.compile(r"^\s*([(\[]?)\s*([A-Za-z])\s*([)\]]?)\s*[.:]?\s*$")
_PHRASE = re.compile(
    r"\b(answer|option|choice)s?\b"
    r"(?:\s*(?:is|would be|should be|will be|[:=\-])\s*)?"
    r"(?:\s*(?:option|choice)\b\s*)?"
    r"\s*:?\s*([(\[]?)([A-Za-z])([)\]]?)(?![A-Za-z0-9'’\-])",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^\s*([(\[]?)([A-Za-z])([)\].:])(?=\s|$)")
_BRACKETED = re.compile(r"[(\[]([A-Za-z])[)\]]")
_CAPITAL = re.compile(r"(?<![A-Za-z0-9'’\-.])([A-Z])(?![A-Za-z0-9'’\-])")
_FOLLOWED_BY_WORD = re.compile(r"\s+[A-Za-z]")
_WORD_LETTERS = frozenset("aAI")


def _reads_as_word(letter: str, text: str, end: int) -> bool:
    """True when the one-letter word ``letter`` at text[..end] is followed by another word."""
    return letter in _WORD_LETTERS and _FOLLOWED_BY_WORD.match(text, end) is not None


def _decide(letters: Iterable[str], n_options: int) -> tuple[bool, int | None]:
    """(found, index): found is False when no in-range letter was seen; index None if ambiguous."""
    indices = {ord(c.upper()) - ord("A") for c in letters}
    indices = {i for i in indices if 0 <= i < n_options}
    if not indices:
        return False, None
    return True, (indices.pop() if len(indices) == 1 else None)


def _whole_letter(text: str) -> list[str]:
    m = _WHOLE.match(text)
    return [m.group(2)] if m else []


def _marked_letters(text: str) -> list[str]:
    """A leading letter with a delimiter, and bracketed letters anywhere."""
    leading = _LEADING.match(text)
    return ([leading.group(2)] if leading else []) + [m.group(1) for m in _BRACKETED.finditer(text)]


def _phrase_letters(text: str) -> list[str]:
    out = []
    for m in _PHRASE.finditer(text):
        keyword, opening, letter, closing = m.group(1).lower(), m.group(2), m.group(3), m.group(4)
        bracketed = bool(opening and closing)
        right_after_option = keyword in ("option", "choice") and text[m.end(1) : m.start(3)].strip(" :#") == ""
        if bracketed or right_after_option or not _reads_as_word(letter, text, m.end(3)):
            out.append(letter)
    return out


def _capital_letters(text: str) -> list[str]:
    return [m.group(1) for m in _CAPITAL.finditer(text) if not _reads_as_word(m.group(1), text, m.end(1))]


def _option_text_match(text: str, options: Sequence[str]) -> int | None:
    spans: list[tuple[int, int, int]] = []  # (start, end, option index)
    for i, option in enumerate(options):
        opt = " ".join(str(option).split())
        if not opt:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in opt.split()) + r"(?!\w)"
        spans.extend((m.start(), m.end(), i) for m in re.finditer(pattern, text, re.IGNORECASE))
    kept = {
        i
        for s, e, i in spans
        if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)
    }
    return kept.pop() if len(kept) == 1 else None


def extract_choice(text: str, options: Sequence[str]) -> int | None:
    """Index into ``options`` of the option ``text`` chose, or None (nothing, or ambiguous).

    Options are lettered A, B, C, ... in order; see the module docstring for the rules.
    """
    if not isinstance(text, str) or not options:
        return None
    text = _MARKDOWN.sub("", text).strip()
    if not text:
        return None
    for tier in (_whole_letter, _phrase_letters, _marked_letters, _capital_letters):
        found, index = _decide(tier(text), len(options))
        if found:
            return index
    return _option_text_match(text, options)


def pair_scores(records: Iterable[SampleRecord]) -> dict[str, float]:
    """MMVP's per-pair scores, keyed by ``metadata["pair_id"]``: 1.0 when every question of the pair has
    accuracy 1, else 0.0. A pair with a failed question, or with only one question evaluated (e.g. cut off
    by --limit), is left out, as lmms-eval does. ``pair_accuracy`` is their mean; ``evalkit compare``
    pairs runs on them."""
    groups: dict[str, list[SampleRecord]] = {}
    for r in records:
        if r.metadata.get("pair_id") is not None:
            groups.setdefault(str(r.metadata["pair_id"]), []).append(r)
    return {pid: float(all(r.scores.get("accuracy") == 1.0 for r in group)) for pid, group in groups.items()
            if len(group) >= 2 and all(r.error is None for r in group)}
