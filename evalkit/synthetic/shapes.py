"""The "shapes" benchmark: seeded, deterministic synthetic scenes of coloured shapes and four tasks on them.

Images are 64x64 px, white, split into a 4x4 grid of 16 px cells; each shape (circle, square or
triangle, in one of five colours, 10/12/14 px wide) sits inside its own cell. 64 px keeps rendering,
training and evaluation fast on a CPU, and the 16 px cells line up with the 16 px patches of the
reference model's vision tower, so one image token sees one whole shape. Left/right is unambiguous:
columns 0-1 are the left half, columns 2-3 the right half.

Tasks (each item holds its scene; ``item.render()`` draws the image on demand):
- ``vqa_items``: colour / shape / count / left-right / yes-no questions, ten VQAv2-style answers.
- ``caption_items``: five reference captions per image, LLaVA's COCO caption prompt.
- ``grounding_items``: a unique referring expression -> pixel box, LLaVA-1.5's RefCOCO prompt.
- ``pair_items``: MMVP-style pairs, two images differing in one property, opposite answers.

``EVAL_SEED`` (0) is the benchmark; training data must come from other seeds (the reference model
uses seeds >= 1000 and drops any scene that also occurs in the benchmark).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from evalkit.core.errors import UsageError
from evalkit.core.boxes import encode_box

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

IMAGE_SIZE = 64
GRID = 4
CELL = IMAGE_SIZE // GRID
BACKGROUND = (255, 255, 255)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 190),
}
KINDS = ("circle", "square", "triangle")
SIZES = (10, 12, 14)
MAX_SHAPES = 4
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")

EVAL_SEED = 0
SUITE_SIZES: dict[str, int] = {"vqa": 500, "caption": 100, "grounding": 200, "pairs": 100}

VQA_SUFFIX = "\nAnswer the question using a single word or phrase."
CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
GROUNDING_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {expr}."
PAIR_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
VQA_QTYPES = ("color", "shape", "count", "position", "exists")
PAIR_QTYPES = ("position", "color", "shape", "count")


@dataclass(frozen=True)
class Shape:
    """One shape: its kind, colour name, grid cell and pixel box (x1, y1, x2, y2), x2/y2 exclusive."""

    kind: str
    color: str
    row: int
    col: int
    box: tuple[int, int, int, int]

    @property
    def side(self) -> str:
        """'left' for columns 0-1, 'right' for columns 2-3."""
        return "left" if self.col < GRID // 2 else "right"

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"


@dataclass(frozen=True)
class Scene:
    """A white 64x64 image holding 1-4 shapes, each in its own grid cell."""

    shapes: tuple[Shape, ...]

    def render(self) -> "Image":
        """Draw the scene as an RGB PIL image."""
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
        draw = ImageDraw.Draw(img)
        for s in self.shapes:
            x1, y1, x2, y2 = s.box
            fill = COLORS[s.color]
            if s.kind == "circle":
                draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=fill)
            elif s.kind == "square":
                draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=fill)
            else:
                draw.polygon([((x1 + x2 - 1) / 2, y1), (x1, y2 - 1), (x2 - 1, y2 - 1)], fill=fill)
        return img

    def png(self) -> bytes:
        """The rendered image as PNG bytes (deterministic for a given scene)."""
        buf = io.BytesIO()
        self.render().save(buf, format="PNG")
        return buf.getvalue()

    @property
    def key(self) -> tuple[tuple[str, str, int, int, tuple[int, int, int, int]], ...]:
        """A hashable identity: two scenes with the same key render the same pixels."""
        return tuple(sorted((s.kind, s.color, s.row, s.col, s.box) for s in self.shapes))

    def ordered(self) -> list[Shape]:
        """Shapes in reading order across the image: left to right, then top to bottom."""
        return sorted(self.shapes, key=lambda s: (s.col, s.row))

    def with_kind(self, kind: str) -> list[Shape]:
        return [s for s in self.shapes if s.kind == kind]

    def with_color(self, color: str) -> list[Shape]:
        return [s for s in self.shapes if s.color == color]

    def find(self, color: str, kind: str) -> list[Shape]:
        return [s for s in self.shapes if s.color == color and s.kind == kind]


@dataclass(frozen=True)
class ShapesItem:
    """Fields every task item has: an id, its scene, the full user text and the training reply."""

    id: str
    scene: Scene
    question: str

    def render(self) -> "Image":
        return self.scene.render()

    @property
    def target(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class VqaItem(ShapesItem):
    """A VQAv2-style question: ten human-style answers, the VQAv2 answer_type, qtype in metadata."""

    answers: tuple[str, ...] = ()
    answer_type: str = "other"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.answers[0]


@dataclass(frozen=True)
class CaptionItem(ShapesItem):
    """An image with five reference captions (the first is the training target)."""

    captions: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.captions[0]


@dataclass(frozen=True)
class GroundingItem(ShapesItem):
    """A referring expression unique in its image and the pixel box (x1, y1, x2, y2) it refers to."""

    expression: str = ""
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def target(self) -> str:
        return encode_box(self.box, "norm_xyxy", IMAGE_SIZE, IMAGE_SIZE)


@dataclass(frozen=True)
class PairItem(ShapesItem):
    """One half of an MMVP-style pair: two options, the right letter ('a' or 'b'), the pair it belongs to."""

    pair_id: str = ""
    options: tuple[str, str] = ("", "")
    answer: str = "a"
    qtype: str = ""

    @property
    def target(self) -> str:
        return f"({self.answer})"


# --- scene sampling ---------------------------------------------------------------------------------


def _shape_in_cell(rng: random.Random, kind: str, color: str, row: int, col: int) -> Shape:
    size = rng.choice(SIZES)
    free = CELL - size - 2  # keep a 1 px margin inside the cell
    x1 = col * CELL + 1 + rng.randint(0, free)
    y1 = row * CELL + 1 + rng.randint(0, free)
    return Shape(kind, color, row, col, (x1, y1, x1 + size, y1 + size))


def random_scene(rng: random.Random, n_min: int = 1, n_max: int = MAX_SHAPES) -> Scene:
    """A scene of n_min..n_max shapes with random kinds and colours, in distinct random cells."""
    n = rng.randint(n_min, n_max)
    cells = rng.sample(range(GRID * GRID), n)
    shapes = [
        _shape_in_cell(rng, rng.choice(KINDS), rng.choice(list(COLORS)), c // GRID, c % GRID) for c in cells
    ]
    return Scene(tuple(shapes))


def _rng(task: str, seed: int) -> random.Random:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UsageError(f"shapes seed must be an integer, got {seed!r}")
    return random.Random(f"shapes-{task}-{seed}")


def _check_n(n: int, what: str) -> None:
    if not isinstance(n, int) or n < 0:
        raise UsageError(f"shapes {what} must be a non-negative integer, got {n!r}")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _number_answers(n: int) -> tuple[str, ...]:
    return (str(n),) * 8 + (NUMBER_WORDS[n],) * 2


# --- VQA --------------------------------------------------------------------------------------------


def _vqa_question(rng: random.Random, scene: Scene, qtype: str) -> tuple[str, str, str] | None:
    """(question, canonical answer, answer_type) for ``qtype`` on ``scene``, or None if not well-defined."""
    shapes = list(scene.shapes)
    if qtype == "color":
        unique = [s for s in shapes if len(scene.with_kind(s.kind)) == 1]
        if not unique:
            return None
        s = rng.choice(unique)
        return f"What color is the {s.kind}?", s.color, "other"
    if qtype == "shape":
        unique = [s for s in shapes if len(scene.with_color(s.color)) == 1]
        if not unique:
            return None
        s = rng.choice(unique)
        return f"What shape is the {s.color} object?", s.kind, "other"
    if qtype == "count":
        return "How many shapes are there?", str(len(shapes)), "number"
    if qtype == "position":
        unique = [s for s in shapes if len(scene.find(s.color, s.kind)) == 1]
        if not unique:
            return None
        s = rng.choice(unique)
        return f"Is the {s.name} on the left or the right?", s.side, "other"
    # exists: half yes; the no's are hard negatives (colour and kind both present) where possible
    if rng.random() < 0.5:
        s = rng.choice(shapes)
        return f"Is there {_article(s.color)} {s.name}?", "yes", "yes/no"
    colors = {s.color for s in shapes}
    kinds = {s.kind for s in shapes}
    hard = [(c, k) for c in sorted(colors) for k in sorted(kinds) if not scene.find(c, k)]
    pool = hard or [(c, k) for c in COLORS for k in KINDS if not scene.find(c, k)]
    c, k = rng.choice(pool)
    return f"Is there {_article(c)} {c} {k}?", "no", "yes/no"


def vqa_items(seed: int, n: int) -> list[VqaItem]:
    """``n`` VQA questions, the five qtypes in turn, deterministic in ``seed``."""
    _check_n(n, "vqa item count")
    rng = _rng("vqa", seed)
    items: list[VqaItem] = []
    for i in range(n):
        qtype = VQA_QTYPES[i % len(VQA_QTYPES)]
        while True:
            scene = random_scene(rng)
            made = _vqa_question(rng, scene, qtype)
            if made is not None:
                break
        q, answer, answer_type = made
        answers = _number_answers(int(answer)) if answer_type == "number" else (answer,) * 10
        items.append(
            VqaItem(
                id=f"shapes-vqa-{seed}-{i}",
                scene=scene,
                question=q + VQA_SUFFIX,
                answers=answers,
                answer_type=answer_type,
                metadata={"qtype": qtype, "question_raw": q},
            )
        )
    return items


# --- captions ---------------------------------------------------------------------------------------


def _listing(scene: Scene) -> str:
    names = [f"{_article(s.color)} {s.name}" for s in scene.ordered()]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def captions_for(scene: Scene) -> tuple[str, ...]:
    """Five reference captions; all list the shapes left to right."""
    listing = _listing(scene)
    n = len(scene.shapes)
    count = f"{NUMBER_WORDS[n].capitalize()} {'shape' if n == 1 else 'shapes'}"
    there = "There is" if n == 1 else "There are"
    return (
        f"An image of {listing}.",
        f"{listing[0].upper()}{listing[1:]} on a white background.",
        f"{count} on a white background: {listing}.",
        f"{there} {listing} in the picture.",
        f"A white image showing {listing}.",
    )


def caption_items(seed: int, n: int) -> list[CaptionItem]:
    """``n`` images with five reference captions each."""
    _check_n(n, "caption item count")
    rng = _rng("caption", seed)
    out = []
    for i in range(n):
        scene = random_scene(rng)
        out.append(CaptionItem(f"shapes-caption-{seed}-{i}", scene, CAPTION_PROMPT, captions_for(scene)))
    return out


# --- grounding --------------------------------------------------------------------------------------


def _expression(rng: random.Random, scene: Scene, s: Shape) -> str:
    """The shortest-looking unique phrase for ``s``: 'the circle' if its kind is unique (half the time)."""
    if len(scene.with_kind(s.kind)) == 1 and rng.random() < 0.5:
        return f"the {s.kind}"
    return f"the {s.name}"


def grounding_items(seed: int, n: int) -> list[GroundingItem]:
    """``n`` referring expressions (each unique in a 2-4 shape image) with their pixel boxes."""
    _check_n(n, "grounding item count")
    rng = _rng("grounding", seed)
    out = []
    for i in range(n):
        scene = random_scene(rng, n_min=2)
        unique = [s for s in scene.shapes if len(scene.find(s.color, s.kind)) == 1]
        while not unique:
            scene = random_scene(rng, n_min=2)
            unique = [s for s in scene.shapes if len(scene.find(s.color, s.kind)) == 1]
        s = rng.choice(unique)
        expr = _expression(rng, scene, s)
        out.append(
            GroundingItem(
                f"shapes-grounding-{seed}-{i}",
                scene,
                GROUNDING_PROMPT.format(expr=expr),
                expression=expr,
                box=s.box,
            )
        )
    return out


# --- MMVP-style pairs -------------------------------------------------------------------------------


def _moved(s: Shape, col: int) -> Shape:
    dx = (col - s.col) * CELL
    x1, y1, x2, y2 = s.box
    return replace(s, col=col, box=(x1 + dx, y1, x2 + dx, y2))


def _pair(rng: random.Random, qtype: str) -> tuple[str, tuple[str, str], Scene, Scene] | None:
    """(question, (answer of image 1, answer of image 2), scene 1, scene 2) differing in one property."""
    base = random_scene(rng, n_max=3)
    shapes = list(base.shapes)
    target = rng.choice(shapes)
    rest = [s for s in shapes if s is not target]
    if qtype == "position":
        mirror = GRID - 1 - target.col
        if any(s.row == target.row and s.col == mirror for s in rest) or base.find(target.color, target.kind) != [
            target
        ]:
            return None
        other = Scene(tuple(rest + [_moved(target, mirror)]))
        q = f"Is the {target.name} on the left or the right?"
        return q, (target.side, "right" if target.side == "left" else "left"), base, other
    if qtype == "color":
        if len(base.with_kind(target.kind)) != 1:
            return None
        color = rng.choice([c for c in COLORS if c != target.color])
        other = Scene(tuple(rest + [replace(target, color=color)]))
        return f"What color is the {target.kind}?", (target.color, color), base, other
    if qtype == "shape":
        kind = rng.choice([k for k in KINDS if k != target.kind])
        changed = replace(target, kind=kind)
        if len(base.with_color(target.color)) != 1:
            return None
        other = Scene(tuple(rest + [changed]))
        return f"What shape is the {target.color} object?", (target.kind, kind), base, other
    used = {(s.row, s.col) for s in shapes}
    free = [c for c in range(GRID * GRID) if (c // GRID, c % GRID) not in used]
    cell = rng.choice(free)
    extra = _shape_in_cell(rng, rng.choice(KINDS), rng.choice(list(COLORS)), cell // GRID, cell % GRID)
    other = Scene(tuple(shapes + [extra]))
    return "How many shapes are there?", (str(len(shapes)), str(len(shapes) + 1)), base, other


def pair_items(seed: int, n_pairs: int) -> list[PairItem]:
    """``2 * n_pairs`` items: consecutive items form a pair (same question and options, opposite answers)."""
    _check_n(n_pairs, "pair count")
    rng = _rng("pairs", seed)
    out: list[PairItem] = []
    for i in range(n_pairs):
        qtype = PAIR_QTYPES[i % len(PAIR_QTYPES)]
        made = None
        while made is None:
            made = _pair(rng, qtype)
        q, (ans1, ans2), scene1, scene2 = made
        if rng.random() < 0.5:
            scene1, scene2, ans1, ans2 = scene2, scene1, ans2, ans1
        options = (ans1, ans2) if rng.random() < 0.5 else (ans2, ans1)
        text = f"{q}\n(a) {options[0]} (b) {options[1]}{PAIR_SUFFIX}"
        pid = f"shapes-pair-{seed}-{i}"
        for j, (scene, ans) in enumerate(((scene1, ans1), (scene2, ans2))):
            letter = "a" if options[0] == ans else "b"
            out.append(PairItem(f"{pid}-{j}", scene, text, pair_id=pid, options=options, answer=letter, qtype=qtype))
    return out


def suite(seed: int = EVAL_SEED, sizes: dict[str, int] | None = None) -> dict[str, list[ShapesItem]]:
    """All four tasks at ``sizes`` (default SUITE_SIZES; 'pairs' counts pairs) for ``seed``."""
    sizes = {**SUITE_SIZES, **(sizes or {})}
    unknown = set(sizes) - set(SUITE_SIZES)
    if unknown:
        raise UsageError(f"unknown shapes task(s) {sorted(unknown)}; choose from {sorted(SUITE_SIZES)}")
    return {
        "vqa": list(vqa_items(seed, sizes["vqa"])),
        "caption": list(caption_items(seed, sizes["caption"])),
        "grounding": list(grounding_items(seed, sizes["grounding"])),
        "pairs": list(pair_items(seed, sizes["pairs"])),
    }
