"""Box formats: hand-worked decoding/encoding per family, round trips, garbage, IoU."""

import json
import math
import random
from pathlib import Path

import pytest

from evalkit.core.errors import UsageError
from evalkit.core.boxes import BOX_FORMATS, decode_box, encode_box
from evalkit.metrics import iou


def _cases(name: str) -> list:
    cases = json.loads((Path(__file__).parent / "metric_cases" / f"{name}.json").read_text())["cases"]
    return [pytest.param(c["input"], c["expected"], id=c["name"]) for c in cases]


@pytest.mark.parametrize(("inp", "expected"), _cases("decode_box"))
def test_decode_box(inp, expected):
    got = decode_box(**inp)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(tuple(expected), abs=1e-9)


@pytest.mark.parametrize(("inp", "expected"), _cases("encode_box"))
def test_encode_box(inp, expected):
    assert encode_box(**inp) == expected


@pytest.mark.parametrize(("inp", "expected"), _cases("iou"))
def test_iou(inp, expected):
    assert iou(**inp) == pytest.approx(expected, abs=1e-12)
    assert iou(inp["box_b"], inp["box_a"]) == pytest.approx(expected, abs=1e-12)


def test_every_format_has_decode_and_encode_cases():
    for name in ("decode_box", "encode_box"):
        data = json.loads((Path(__file__).parent / "metric_cases" / f"{name}.json").read_text())
        assert {c["input"]["fmt"] for c in data["cases"]} == set(BOX_FORMATS)


# Largest error one quantisation step may introduce, as a fraction of the image side.
_STEP = {
    "norm_xyxy": 0.005,
    "norm_xyxy_square": 0.005,  # of the square side
    "qwen_vl": 0.5 / 999,
    "internvl": 0.5 / 1000,
    "florence2": 1 / 1000,
    "paligemma": 0.5 / 1023,
    "kosmos2": 1 / 32,
    "pixel": 0.005,
}


@pytest.mark.parametrize("fmt", BOX_FORMATS)
@pytest.mark.parametrize(("width", "height"), [(640, 480), (333, 500), (1024, 1024)])
def test_round_trip(fmt, width, height):
    rng = random.Random(f"{fmt}{width}{height}")
    for _ in range(50):
        x1, x2 = sorted(rng.uniform(0, width) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, height) for _ in range(2))
        box = (x1, y1, x2 + 1, y2 + 1)
        box = (box[0], box[1], min(box[2], width), min(box[3], height))
        decoded = decode_box(encode_box(box, fmt, width, height), fmt, width, height)
        assert decoded is not None
        side = max(width, height) if fmt == "norm_xyxy_square" else None
        for i, (a, b) in enumerate(zip(box, decoded)):
            scale = side if side else (width if i % 2 == 0 else height)
            tol = 0.005 if fmt == "pixel" else _STEP[fmt] * scale + 1e-9
            assert math.isclose(a, b, abs_tol=tol), (fmt, box, decoded)


@pytest.mark.parametrize("fmt", BOX_FORMATS)
@pytest.mark.parametrize(
    "text",
    ["", "I cannot see a dog.", "[a, b, c, d]", "<box></box>", "<loc_12>", "[1, 2]", "<patch_index_0001>", "(1,2),(3)"],
)
def test_garbage_is_none(fmt, text):
    assert decode_box(text, fmt, 640, 480) is None


@pytest.mark.parametrize("fmt", BOX_FORMATS)
def test_decoded_boxes_lie_inside_the_image(fmt):
    texts = {
        "norm_xyxy": "[-1, -1, 2, 2]",
        "norm_xyxy_square": "[-1, -1, 2, 2]",
        "qwen_vl": "(0,0),(999,999)",
        "internvl": "[[0, 0, 1000, 1000]]",
        "florence2": "<loc_0><loc_0><loc_999><loc_999>",
        "paligemma": "<loc0000><loc0000><loc1023><loc1023>",
        "kosmos2": "<patch_index_0000><patch_index_1023>",
        "pixel": "[-10, -10, 9999, 9999]",
    }
    x1, y1, x2, y2 = decode_box(texts[fmt], fmt, 300, 200)
    assert 0 <= x1 <= x2 <= 300 and 0 <= y1 <= y2 <= 200


def test_unknown_format_is_a_value_error_and_usage_error():
    with pytest.raises(ValueError, match="unknown box format 'xywh'"):
        decode_box("[1, 2, 3, 4]", "xywh", 10, 10)
    with pytest.raises(UsageError):
        encode_box((1, 2, 3, 4), "xywh", 10, 10)


def test_non_positive_image_size_is_rejected():
    with pytest.raises(ValueError):
        decode_box("[0.1, 0.1, 0.2, 0.2]", "norm_xyxy", 0, 10)
