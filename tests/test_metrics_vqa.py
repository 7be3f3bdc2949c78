"""VQA accuracy and answer normalisation against hand-worked official-algorithm cases."""

import json
from pathlib import Path

import pytest

from evalkit.metrics import normalize_vqa_answer, vqa_accuracy


def _cases(name: str) -> list:
    cases = json.loads((Path(__file__).parent / "metric_cases" / f"{name}.json").read_text())["cases"]
    return [pytest.param(c["input"], c["expected"], id=c["name"]) for c in cases]


@pytest.mark.parametrize(("inp", "expected"), _cases("normalize_vqa_answer"))
def test_normalize_vqa_answer(inp, expected):
    assert normalize_vqa_answer(**inp) == expected


@pytest.mark.parametrize(("inp", "expected"), _cases("vqa_accuracy"))
def test_vqa_accuracy(inp, expected):
    assert vqa_accuracy(**inp) == pytest.approx(expected, abs=1e-12)


def test_normalization_is_idempotent_on_normalised_answers():
    # Ground-truth answers are normalised too; doing it twice must not change them.
    for raw in ["Yes.", "two dogs", "1,000", "t-shirt", "dont", "a/b", "The Man's hat", "(left)"]:
        once = normalize_vqa_answer(raw)
        assert normalize_vqa_answer(once) == once


@pytest.mark.parametrize("answers", [[], ["yes"]])
def test_fewer_than_two_answers_is_an_error(answers):
    with pytest.raises(ValueError, match="at least 2"):
        vqa_accuracy("yes", answers)


def test_score_is_order_independent():
    answers = ["no", "yes", "no", "no", "yes", "no", "no", "no", "no", "no"]
    assert vqa_accuracy("yes", answers) == pytest.approx(vqa_accuracy("yes", sorted(answers)))
