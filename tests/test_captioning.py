"""COCO caption metrics through pycocoevalcap: hand-checked and stock-pipeline reference values."""

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pycocoevalcap")
from evalkit.core.errors import UsageError  # noqa: E402
from evalkit.metrics import captioning  # noqa: E402

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="captioning metrics need Java")
CASE = json.loads((Path(__file__).parent / "metric_cases" / "captioning.json").read_text())


@pytest.fixture(scope="module")
def reference_result():
    return captioning.score_captions(**CASE["input"])


@needs_java
def test_matches_reference_values(reference_result):
    for key, expected in CASE["expected"].items():
        got = reference_result.scores[key]
        if key == "SPICE" and captioning.spice_unavailable_reason(shutil.which("java")) is None:
            continue  # SPICE can run on this machine: no stored value to compare with
        if expected is None:
            assert got is None, key
        else:
            assert got == pytest.approx(expected, rel=1e-9), key


@needs_java
def test_per_image_cider(reference_result):
    expected = CASE["expected_cider_per_image"]
    assert reference_result.cider_per_image == pytest.approx(expected, abs=1e-7)
    # CIDEr-D of the corpus is the mean of the per-image values
    mean = sum(reference_result.cider_per_image.values()) / 2
    assert reference_result.scores["CIDEr"] == pytest.approx(mean)


@needs_java
def test_identical_caption_has_bleu_4_of_one():
    scores = captioning.caption_scores(
        {"a": "A black cat sits on a red sofa."}, {"a": ["a black cat sits on a red sofa"]}, metrics=("bleu",)
    )
    assert scores["Bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert set(scores) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"}


@needs_java
def test_ptb_tokenizer_lowercases_drops_punctuation_and_keeps_alignment():
    got = captioning.ptb_tokenize(["A man, riding a horse!", "two\nlines", "", "Don't stop."])
    assert got == ["a man riding a horse", "two lines", "", "do n't stop"]


def test_missing_java_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="captioning metrics need Java"):
        captioning.caption_scores({"a": "x"}, {"a": ["x"]})


def test_mismatched_ids_are_rejected():
    with pytest.raises(ValueError, match="same images"):
        captioning.caption_scores({"a": "x"}, {"b": ["x"]})


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="unknown caption metric"):
        captioning.caption_scores({"a": "x"}, {"a": ["x"]}, metrics=("bleurt",))


@needs_java
def test_java_version_parsing():
    assert captioning.java_major_version(shutil.which("java")) >= 8
