"""Multiple-choice extraction: letters in their answer forms, option-text fallback, ambiguity."""

import json
from pathlib import Path

import pytest

from evalkit.metrics import extract_choice


def _cases(name: str) -> list:
    cases = json.loads((Path(__file__).parent / "metric_cases" / f"{name}.json").read_text())["cases"]
    return [pytest.param(c["input"], c["expected"], id=c["name"]) for c in cases]


@pytest.mark.parametrize(("inp", "expected"), _cases("extract_choice"))
def test_extract_choice(inp, expected):
    assert extract_choice(**inp) == expected


def test_no_options_is_none():
    assert extract_choice("A", []) is None
