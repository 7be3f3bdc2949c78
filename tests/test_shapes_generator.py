"""The shapes benchmark generator, checked against the rendered PIXELS (not the scene objects it drew from)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from evalkit.core.errors import UsageError
from evalkit.core.boxes import decode_box
from evalkit.synthetic import shapes as S

PALETTE = {name: np.array(rgb) for name, rgb in S.COLORS.items()}
NUM = {w: i for i, w in enumerate(S.NUMBER_WORDS)}


@dataclass
class Blob:
    """A shape as seen in the pixels: colour, kind guessed from fill ratio, pixel box, centre x."""

    color: str
    kind: str
    box: tuple[int, int, int, int]
    cx: float


def blobs(img) -> list[Blob]:
    """Segment a rendered image cell by cell (each shape lies in its own 16 px cell)."""
    arr = np.asarray(img).astype(int)
    assert arr.shape == (64, 64, 3)
    fg = (arr != 255).any(axis=2)
    out = []
    for r in range(4):
        for c in range(4):
            ys, xs = np.nonzero(fg[r * 16 : (r + 1) * 16, c * 16 : (c + 1) * 16])
            if len(xs) == 0:
                continue
            ys, xs = ys + r * 16, xs + c * 16
            colours = {tuple(arr[y, x]) for y, x in zip(ys, xs)}
            assert len(colours) == 1, "a shape must be drawn in one flat colour"
            (rgb,) = colours
            color = next(n for n, v in PALETTE.items() if tuple(v) == rgb)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            fill = len(xs) / ((box[2] - box[0]) * (box[3] - box[1]))
            kind = "square" if fill > 0.95 else "circle" if fill > 0.68 else "triangle"
            out.append(Blob(color, kind, box, float(xs.mean())))
    return out


def find(bs: list[Blob], color: str | None = None, kind: str | None = None) -> list[Blob]:
    return [b for b in bs if (color is None or b.color == color) and (kind is None or b.kind == kind)]


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def side(b: Blob) -> str:
    return "left" if b.cx < 32 else "right"


def pixel_answer(question: str, bs: list[Blob]) -> str:
    """Answer a generated question from the pixels alone."""
    if m := re.fullmatch(r"What color is the (\w+)\?", question):
        (b,) = find(bs, kind=m[1])
        return b.color
    if m := re.fullmatch(r"What shape is the (\w+) object\?", question):
        (b,) = find(bs, color=m[1])
        return b.kind
    if question == "How many shapes are there?":
        return str(len(bs))
    if m := re.fullmatch(r"Is the (\w+) (\w+) on the left or the right\?", question):
        (b,) = find(bs, m[1], m[2])
        return side(b)
    if m := re.fullmatch(r"Is there an? (\w+) (\w+)\?", question):
        return "yes" if find(bs, m[1], m[2]) else "no"
    raise AssertionError(f"unexpected question {question!r}")


def test_vqa_answers_match_pixels() -> None:
    items = S.vqa_items(0, 300)
    assert {it.metadata["qtype"] for it in items} == set(S.VQA_QTYPES)
    for it in items:
        assert it.question.endswith("\nAnswer the question using a single word or phrase.")
        q = it.question.split("\n")[0]
        truth = pixel_answer(q, blobs(it.render()))
        assert len(it.answers) == 10
        assert it.answers.count(truth) >= 8, (q, truth, it.answers)
        for a in it.answers:  # the only allowed variation: the number written as a word
            assert a == truth or NUM.get(a) == int(truth)
        assert it.answer_type == {"yes": "yes/no", "no": "yes/no"}.get(truth, "number" if truth.isdigit() else "other")


def test_yes_no_is_balanced_and_negatives_are_hard() -> None:
    items = [it for it in S.vqa_items(0, 500) if it.metadata["qtype"] == "exists"]
    answers = [it.target for it in items]
    assert 0.35 < answers.count("yes") / len(answers) < 0.65
    hard = 0
    for it in items:
        m = re.fullmatch(r"Is there an? (\w+) (\w+)\?", it.question.split("\n")[0])
        bs = blobs(it.render())
        if it.target == "no" and find(bs, color=m[1]) and find(bs, kind=m[2]):
            hard += 1
    assert hard >= 10  # "no" questions naming a colour and a kind that are both in the image


def test_captions_list_the_pixels_left_to_right() -> None:
    for it in S.caption_items(0, 60):
        assert it.question == "Provide a one-sentence caption for the provided image."
        bs = sorted(blobs(it.render()), key=lambda b: (b.box[0] // 16, b.box[1] // 16))
        names = [f"{'an' if b.color[0] in 'aeiou' else 'a'} {b.color} {b.kind}" for b in bs]
        listing = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        assert len(it.captions) == 5 and len(set(it.captions)) == 5
        assert it.captions[0] == f"An image of {listing}."
        assert all(listing.lower() in c.lower() for c in it.captions)


def test_grounding_boxes_match_pixels() -> None:
    items = S.grounding_items(0, 120)
    for it in items:
        assert it.question == (
            "Please provide the bounding box coordinate of the region this sentence describes: "
            f"{it.expression}."
        )
        words = it.expression.split()[1:]
        bs = blobs(it.render())
        matches = find(bs, kind=words[0]) if len(words) == 1 else find(bs, words[0], words[1])
        assert len(matches) == 1, "the referring expression must be unique in its image"
        px = matches[0].box
        assert max(abs(a - b) for a, b in zip(px, it.box)) <= 1
        assert re.fullmatch(r"\[\d\.\d\d, \d\.\d\d, \d\.\d\d, \d\.\d\d\]", it.target)
        decoded = decode_box(it.target, "norm_xyxy", 64, 64)
        assert decoded is not None and iou(decoded, px) > 0.85


def test_pairs_differ_in_one_property_with_opposite_answers() -> None:
    items = S.pair_items(0, 40)
    assert len(items) == 80
    for first, second in zip(items[::2], items[1::2]):
        assert first.pair_id == second.pair_id and first.question == second.question
        assert first.options == second.options and {first.answer, second.answer} == {"a", "b"}
        q, opts, suffix = first.question.split("\n")
        assert suffix == "Answer with the option's letter from the given choices directly."
        assert opts == f"(a) {first.options[0]} (b) {first.options[1]}"
        for it in (first, second):
            truth = pixel_answer(q, blobs(it.render()))
            assert it.options["ab".index(it.answer)] == truth
            assert it.target == f"({it.answer})"
        assert first.render().tobytes() != second.render().tobytes()


def test_same_seed_same_bytes_other_seed_other_items() -> None:
    a, b = S.suite(0, {"vqa": 20, "caption": 5, "grounding": 5, "pairs": 5}), S.suite(0, {"vqa": 20, "caption": 5, "grounding": 5, "pairs": 5})
    for name in a:
        assert [(x.id, x.question, x.target, x.scene.png()) for x in a[name]] == [
            (y.id, y.question, y.target, y.scene.png()) for y in b[name]
        ]
    other = S.vqa_items(1000, 20)
    assert [x.scene.png() for x in other] != [x.scene.png() for x in a["vqa"]]


def test_suite_sizes_and_ids_unique() -> None:
    suite = S.suite(S.EVAL_SEED)
    assert S.EVAL_SEED == 0
    assert len(suite["vqa"]) == S.SUITE_SIZES["vqa"]
    assert len(suite["pairs"]) == 2 * S.SUITE_SIZES["pairs"]
    ids = [it.id for items in suite.values() for it in items]
    assert len(ids) == len(set(ids))


def test_bad_input_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        S.vqa_items(0, -1)
    with pytest.raises(UsageError):
        S.suite(0, {"nope": 3})
