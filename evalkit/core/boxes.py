"""Box formats of the MLLM families (text <-> pixel ``(x1, y1, x2, y2)`` boxes) and box IoU.

Each format follows its family's own evaluation or post-processing code, because that is the
definition the family's published RefCOCO numbers were computed with:

``norm_xyxy``
    ``"[0.12, 0.34, 0.56, 0.78]"``: floats in [0, 1] relative to width/height (Shikra,
    LLaVA-style prompts). Encoded with exactly 2 decimals and ``", "`` separators.
``norm_xyxy_square``
    The same numbers, but relative to the image padded to a square the way LLaVA's
    ``expand2square`` pads it: side ``max(w, h)``, the image pasted at offset
    ``((side - w) // 2, (side - h) // 2)``. LLaVA-1.5 was trained on RefCOCO boxes in this frame.
``qwen_vl``
    ``"<box>(x1,y1),(x2,y2)</box>"`` on a 0-1000 grid. Qwen-VL's ``eval_mm/evaluate_grounding.py``
    divides by 999 (not 1000) before multiplying by w/h; we decode the same way and encode
    with ``round(v / w * 999)`` so that encode/decode invert each other. The ``<box>`` tags are
    optional when decoding (Qwen-VL's grounding prompt ends in ``<box>``).
``internvl``
    ``"[[x1, y1, x2, y2]]"`` on 0-1000, divided by 1000 (InternVL's evaluate_grounding.py).
    InternVL's script also treats boxes whose numbers sum to < 4 as already relative; we never
    guess the scale from the magnitude of the numbers.
``florence2``
    ``"<loc_N>"`` x4 (x1 y1 x2 y2), N in 0-999. Decoded to bin centres ``(N + 0.5) * w / 1000``,
    encoded with ``floor(v / (w / 1000))`` clamped to 0-999 (transformers' Florence2 processor).
``paligemma``
    ``"<locNNNN>"`` x4 in **y1 x1 y2 x2** order on 0-1023. Decoded as ``N / 1023`` (big_vision's
    PaliGemma evaluators: ``tokens / 1023  # Back to [0.0 ... 1.0]``), encoded with
    ``round(v * 1023)``.
``kosmos2``
    ``"<patch_index_NNNN><patch_index_NNNN>"``: upper-left and lower-right cells of a 32x32 grid,
    decoded and encoded exactly as transformers' Kosmos-2 processor
    (``patch_index_to_coordinate`` / ``coordinate_to_patch_index``).
``pixel``
    ``"[x1, y1, x2, y2]"`` in absolute pixels.

The first box in the text is the prediction (as in every family's evaluation script).
Decoded boxes are clipped to the image; a box whose second corner lies left of or above its
first is not a box and decodes to None (the official scripts score it IoU 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from evalkit.core.errors import UsageError

Box = tuple[float, float, float, float]

BOX_FORMATS: tuple[str, ...] = (
    "norm_xyxy",
    "norm_xyxy_square",
    "qwen_vl",
    "internvl",
    "florence2",
    "paligemma",
    "kosmos2",
    "pixel",
)


class UnknownBoxFormat(UsageError, ValueError):
    """A box format name that is not in BOX_FORMATS (a ValueError and a UsageError)."""


_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_SEP = r"\s*,\s*"
_FOUR_IN_BRACKETS = re.compile(r"\[\s*" + _SEP.join([_NUM] * 4) + r"\s*\]")
_QWEN = re.compile(r"\(\s*" + _NUM + _SEP + _NUM + r"\s*\)\s*,\s*\(\s*" + _NUM + _SEP + _NUM + r"\s*\)")
_FLORENCE = re.compile(r"<loc_(\d+)>\s*<loc_(\d+)>\s*<loc_(\d+)>\s*<loc_(\d+)>")
_PALIGEMMA = re.compile(r"<loc(\d{4})>\s*<loc(\d{4})>\s*<loc(\d{4})>\s*<loc(\d{4})>")
_KOSMOS = re.compile(r"<patch_index_(\d{4})>\s*<patch_index_(\d{4})>")

_KOSMOS_SIDE = 32  # transformers' Kosmos-2: num_patch_index_tokens=1024 -> 32 per side
_FLORENCE_BINS = 1000
_PALIGEMMA_MAX = 1023
_QWEN_DIV = 999.0
_INTERNVL_DIV = 1000.0


def _check_fmt(fmt: str) -> None:
    if fmt not in BOX_FORMATS:
        raise UnknownBoxFormat(f"unknown box format {fmt!r}; choose one of: {', '.join(BOX_FORMATS)}")


def _check_size(width: int, height: int) -> None:
    if not (width > 0 and height > 0):
        raise ValueError(f"image size must be positive, got width={width}, height={height}")


def _square_frame(width: int, height: int) -> tuple[float, float, float]:
    """(side, x offset, y offset) of the image inside LLaVA's expand2square canvas."""
    side = max(width, height)
    return float(side), float((side - width) // 2), float((side - height) // 2)


def _finish(box: Sequence[float], width: int, height: int) -> Box | None:
    """Clip a pixel box to the image; None for NaN or inverted corners."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if any(math.isnan(v) for v in (x1, y1, x2, y2)) or x2 < x1 or y2 < y1:
        return None
    x1, x2 = (min(max(v, 0.0), float(width)) for v in (x1, x2))
    y1, y2 = (min(max(v, 0.0), float(height)) for v in (y1, y2))
    return (x1, y1, x2, y2)


def _floats(match: re.Match[str] | None) -> list[float] | None:
    return None if match is None else [float(g) for g in match.groups()]


def _ints(match: re.Match[str] | None) -> list[int] | None:
    return None if match is None else [int(g) for g in match.groups()]


# ---- decoders: text -> raw pixel box (not yet clipped) ----------------------------------------


def _dec_norm(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _floats(_FOUR_IN_BRACKETS.search(text))
    return None if v is None else (v[0] * w, v[1] * h, v[2] * w, v[3] * h)


def _dec_norm_square(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _floats(_FOUR_IN_BRACKETS.search(text))
    if v is None:
        return None
    side, ox, oy = _square_frame(w, h)
    return (v[0] * side - ox, v[1] * side - oy, v[2] * side - ox, v[3] * side - oy)


def _dec_qwen(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _floats(_QWEN.search(text))
    if v is None:
        return None
    return (v[0] / _QWEN_DIV * w, v[1] / _QWEN_DIV * h, v[2] / _QWEN_DIV * w, v[3] / _QWEN_DIV * h)


def _dec_internvl(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _floats(_FOUR_IN_BRACKETS.search(text))
    if v is None:
        return None
    d = _INTERNVL_DIV
    return (v[0] / d * w, v[1] / d * h, v[2] / d * w, v[3] / d * h)


def _dec_florence(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _ints(_FLORENCE.search(text))
    if v is None or max(v) >= _FLORENCE_BINS:
        return None
    bw, bh = w / _FLORENCE_BINS, h / _FLORENCE_BINS
    return ((v[0] + 0.5) * bw, (v[1] + 0.5) * bh, (v[2] + 0.5) * bw, (v[3] + 0.5) * bh)


def _dec_paligemma(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _ints(_PALIGEMMA.search(text))
    if v is None or max(v) > _PALIGEMMA_MAX:
        return None
    y1, x1, y2, x2 = (t / _PALIGEMMA_MAX for t in v)
    return (x1 * w, y1 * h, x2 * w, y2 * h)


def _dec_kosmos(text: str, w: int, h: int) -> Sequence[float] | None:
    v = _ints(_KOSMOS.search(text))
    n = _KOSMOS_SIDE
    if v is None or max(v) >= n * n:
        return None
    ul, lr = v
    ul_x, ul_y, lr_x, lr_y = ul % n, ul // n, lr % n, lr // n
    cell = 1.0 / n
    # transformers' patch_index_to_coordinate: whole cells when the corners share a row, a
    # column or a cell; cell centres otherwise.
    if ul == lr or ul_x == lr_x or ul_y == lr_y:
        box = (ul_x * cell, ul_y * cell, lr_x * cell + cell, lr_y * cell + cell)
    else:
        half = cell / 2
        box = (ul_x * cell + half, ul_y * cell + half, lr_x * cell + half, lr_y * cell + half)
    return (box[0] * w, box[1] * h, box[2] * w, box[3] * h)


def _dec_pixel(text: str, w: int, h: int) -> Sequence[float] | None:
    return _floats(_FOUR_IN_BRACKETS.search(text))


_DECODERS: dict[str, Callable[[str, int, int], Sequence[float] | None]] = {
    "norm_xyxy": _dec_norm,
    "norm_xyxy_square": _dec_norm_square,
    "qwen_vl": _dec_qwen,
    "internvl": _dec_internvl,
    "florence2": _dec_florence,
    "paligemma": _dec_paligemma,
    "kosmos2": _dec_kosmos,
    "pixel": _dec_pixel,
}


def decode_box(text: str, fmt: str, width: int, height: int) -> Box | None:
    """The first box of format ``fmt`` in ``text`` as a pixel ``(x1, y1, x2, y2)`` box.

    Clipped to the ``width`` x ``height`` image, with x1 <= x2 and y1 <= y2; None when no box
    of that format is found, a token is out of its vocabulary range, or the corners are
    inverted. Raises ValueError (UnknownBoxFormat) for an unknown ``fmt``.
    """
    _check_fmt(fmt)
    _check_size(width, height)
    if not isinstance(text, str):
        return None
    raw = _DECODERS[fmt](text, width, height)
    return None if raw is None else _finish(raw, width, height)


# ---- encoders: pixel box -> text ---------------------------------------------------------------


def _fmt_num(v: float) -> str:
    """A pixel coordinate: an integer when it is one, else up to 2 decimals."""
    r = round(v, 2)
    return str(int(r)) if r == int(r) else f"{r:.2f}".rstrip("0")


def _clamp_int(v: float, lo: int, hi: int) -> int:
    return min(max(int(v), lo), hi)


def encode_box(box: Sequence[float], fmt: str, width: int, height: int) -> str:
    """Render a pixel ``(x1, y1, x2, y2)`` box as format ``fmt`` (for prompts and targets).

    ``decode_box(encode_box(b, fmt, w, h), fmt, w, h)`` returns ``b`` up to the format's
    quantisation. Raises ValueError for an unknown ``fmt`` or a box that is not 4 numbers.
    """
    _check_fmt(fmt)
    _check_size(width, height)
    if len(box) != 4:
        raise ValueError(f"a box is 4 numbers (x1, y1, x2, y2), got {box!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = float(width), float(height)
    if fmt == "norm_xyxy":
        return "[" + ", ".join(f"{v:.2f}" for v in (x1 / w, y1 / h, x2 / w, y2 / h)) + "]"
    if fmt == "norm_xyxy_square":
        side, ox, oy = _square_frame(width, height)
        rel = ((x1 + ox) / side, (y1 + oy) / side, (x2 + ox) / side, (y2 + oy) / side)
        return "[" + ", ".join(f"{v:.2f}" for v in rel) + "]"
    if fmt == "qwen_vl":
        q = [round(v * _QWEN_DIV) for v in (x1 / w, y1 / h, x2 / w, y2 / h)]
        return f"<box>({q[0]},{q[1]}),({q[2]},{q[3]})</box>"
    if fmt == "internvl":
        q = [round(v * _INTERNVL_DIV) for v in (x1 / w, y1 / h, x2 / w, y2 / h)]
        return "[[" + ", ".join(str(v) for v in q) + "]]"
    if fmt == "florence2":
        bw, bh = w / _FLORENCE_BINS, h / _FLORENCE_BINS
        q = [
            _clamp_int(math.floor(v / b), 0, _FLORENCE_BINS - 1)
            for v, b in ((x1, bw), (y1, bh), (x2, bw), (y2, bh))
        ]
        return "".join(f"<loc_{v}>" for v in q)
    if fmt == "paligemma":
        q = [_clamp_int(round(v * _PALIGEMMA_MAX), 0, _PALIGEMMA_MAX) for v in (y1 / h, x1 / w, y2 / h, x2 / w)]
        return "".join(f"<loc{v:04d}>" for v in q)
    if fmt == "kosmos2":
        n = _KOSMOS_SIDE
        # transformers' coordinate_to_patch_index, clamped to the grid and to ul <= lr.
        ul_x = _clamp_int(math.floor(x1 / w * n), 0, n - 1)
        ul_y = _clamp_int(math.floor(y1 / h * n), 0, n - 1)
        lr_x = max(_clamp_int(math.ceil(x2 / w * n - 1), 0, n - 1), ul_x)
        lr_y = max(_clamp_int(math.ceil(y2 / h * n - 1), 0, n - 1), ul_y)
        return f"<patch_index_{ul_y * n + ul_x:04d}><patch_index_{lr_y * n + lr_x:04d}>"
    return "[" + ", ".join(_fmt_num(v) for v in (x1, y1, x2, y2)) + "]"


def iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """Intersection over union of two pixel ``(x1, y1, x2, y2)`` boxes.

    Continuous coordinates: a box's area is ``(x2 - x1) * (y2 - y1)``, no ``+ 1``. Returns 0.0
    for non-overlapping boxes and whenever either box is degenerate (zero area, inverted or NaN).
    """
    ax1, ay1, ax2, ay2 = (float(v) for v in box_a)
    bx1, by1, bx2, by2 = (float(v) for v in box_b)
    area_a = (ax2 - ax1) * (ay2 - ay1)
    area_b = (bx2 - bx1) * (by2 - by1)
    # `not (x > 0)` is also true for NaN
    if not (ax2 > ax1 and ay2 > ay1 and bx2 > bx1 and by2 > by1):
        return 0.0
    inter_w = min(ax2, bx2) - max(ax1, bx1)
    inter_h = min(ay2, by2) - max(ay1, by1)
    if not (inter_w > 0 and inter_h > 0):
        return 0.0
    inter = inter_w * inter_h
    return inter / (area_a + area_b - inter)
