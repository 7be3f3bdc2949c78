"""GQA's protocol as the LLaVA/Qwen-VL/InternVL papers report it, and how it relates to the other two
definitions in use, measured on generated answers (the figures are the ones docs/tasks.md states).

- ``llava_gqa``: LLaVA's scripts/convert_gqa_for_eval.py (``res['text'].rstrip('.').lower()``, the text already
  stripped by model_vqa_loader) followed by GQA's eval.py (``correct = (predicted == gold)``).
- ``lmms_gqa``: lmms-eval's gqa.yaml, ``exact_match`` with ``ignore_case`` and ``ignore_punctuation``
  (lmms_eval/api/metrics.py ``exact_match_hf_evaluate``: lowercase both, delete ``string.punctuation`` from both).
"""

from __future__ import annotations

import random
import string

import pytest

from evalkit.metrics import gqa_answer, gqa_exact_match, normalize_vqa_answer


def llava_gqa(text: str, gold: str) -> float:
    prediction = text.strip().rstrip(".").lower()  # model_vqa_loader strips; convert_gqa_for_eval.py
    return float(prediction == gold)  # eval.py


def lmms_gqa(text: str, gold: str) -> float:
    table = str.maketrans("", "", string.punctuation)
    return float(text.lower().translate(table) == gold.lower().translate(table))


def vqa_normalized(text: str, gold: str) -> float:
    return float(normalize_vqa_answer(text) == normalize_vqa_answer(gold))


# GQA-style gold answers (lowercase words, some with spaces or hyphens) and how models spell them.
GOLD = ["yes", "no", "left", "right", "man", "table", "white", "red", "wood", "t-shirt", "traffic light",
        "2", "dog", "cell phone", "black and white", "frisbee", "bottom", "people", "the ground", "shirt"]


def _spelling(rng: random.Random, gold: str) -> str:
    text = rng.choice([gold, gold, gold, rng.choice(GOLD)])
    for op in rng.sample(range(10), rng.choice([0, 1, 1, 2])):
        text = [
            lambda t: t.capitalize(), lambda t: t + ".", lambda t: t + rng.choice(["!", "?", ",", ".."]),
            lambda t: rng.choice(["the ", "a ", "The "]) + t, lambda t: t.replace("-", " ").replace("2", "two"),
            lambda t: f'"{t}"', lambda t: " " + t + "\n", lambda t: t.replace(" ", "-"), lambda t: t + "'s",
            lambda t: t + ":",
        ][op](text)
    return text.strip()  # what evalkit scores: the parsed (stripped) output


def generated(n: int = 5000, seed: int = 17) -> list[tuple[str, str]]:
    """(prediction as stored, gold answer) pairs."""
    rng = random.Random(seed)
    return [(_spelling(rng, gold), gold) for gold in (rng.choice(GOLD) for _ in range(n))]


CASES = generated()


@pytest.mark.parametrize(("text", "gold", "expected"), [
    ("yes", "yes", 1.0), ("Yes.", "yes", 1.0), ("Yes...", "yes", 1.0), ("  no \n", "no", 1.0),
    ("yes!", "yes", 0.0), ("the table", "table", 0.0), ("two", "2", 0.0), ("t shirt", "t-shirt", 0.0),
    ("Traffic light.", "traffic light", 1.0), ("left side", "left", 0.0), ("", "no", 0.0),
])
def test_gqa_protocol_hand_cases(text: str, gold: str, expected: float) -> None:
    assert gqa_exact_match(text, gold) == expected


def test_gqa_exact_match_is_llava_conversion_then_eval_py() -> None:
    assert [c for c in CASES if gqa_exact_match(*c) != llava_gqa(*c)] == []
    assert gqa_answer(" Yes.\n") == "yes"


def relation(a, b) -> tuple[int, int]:
    """(cases where a scores 1 and b 0, cases where b scores 1 and a 0)."""
    return (sum(1 for c in CASES if a(*c) > b(*c)), sum(1 for c in CASES if b(*c) > a(*c)))


def test_measured_relations_stated_in_the_docs() -> None:
    # exact_match never credits what lmms-eval refuses; lmms-eval also credits punctuation it deletes.
    assert relation(gqa_exact_match, lmms_gqa) == (0, 850)
    # the VQA-normalized secondary is more lenient than exact_match (articles, number words, punctuation) ...
    assert relation(gqa_exact_match, vqa_normalized) == (0, 1022)
    # ... and neither contains lmms-eval's: it credits articles, number words and hyphens-as-spaces that
    # lmms-eval refuses, which credits ':' and "'s" and quotes-with-colons that the VQA normalization keeps.
    assert relation(vqa_normalized, lmms_gqa) == (485, 313)
