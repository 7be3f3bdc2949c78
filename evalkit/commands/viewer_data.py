"""What the sample viewer (``evalkit view``) shows: one row per sample, the task facts the page needs, and
small JPEG thumbnails of the images, re-opened from the run's dataset the way ``evalkit run`` opens it.

A row is a plain dict with short keys (the page embeds them as gzipped JSON, so 200k samples stay a few MB):

    i id · t task index · s status (right | wrong | partly | failed | unscored) · e 1 when the output is empty
    p prompt · o raw output · a parsed answer · g target · sc per-sample scores · er [category, message]
    m breakdown fields (metadata key -> value text) · md the rest of the metadata · j the judge's verdict
    h a human grade · pk pair id · pv whether the pair counts (1 / 0 / null: left out) · wh [width, height]
    im indexes into the page's thumbnail list

In a comparison a row holds the sample's shared facts (i t g m md p pk im wh) plus ``b`` and ``c``: the
baseline's and the candidate's own fields (s e o a sc er j pv, and p when its prompt differs), and ``fl``:
worse | better | changed | same, from the flips ``compare`` finds.

Status: the per-sample score ``compare`` judges flips by (the primary metric's, else the task's first one)
decides right (1), wrong (0) or partly right (in between); a failed sample is ``failed``; a sample without
that score (a corpus metric such as CIDEr, a pending judge) is ``unscored``.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.commands.compare import Comparison, RunSide, _flip_metric, _flips, _samples, load_side
from evalkit.core.errors import UsageError
from evalkit.metrics.choice import pair_scores

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.core.results import DatasetInfo, SampleRecord, TaskResult
    from evalkit.core.types import Sample

DEFAULT_MAX_IMAGES = 1000
THUMB_PX = 160  # longest side of a thumbnail; smaller images are kept at their size
JPEG_QUALITY = 80
MAX_FIELD_VALUES = 40  # a metadata key with more distinct values is not offered as a filter
MAX_FIELD_TEXT = 48  # nor one with a longer value (a sentence, not a category)
# Metadata that identifies or describes one sample rather than grouping samples.
NOT_FIELDS = frozenset({"width", "height", "pair_id", "index", "question_id", "image_id", "image", "image_file",
                        "dialogue", "question", "question_raw", "raw_question", "expression", "options", "earlier_questions",
                        "judge", "reference_file", "original_answer", "file_name"})
FLIP_ORDER = {"worse": 0, "better": 1, "changed": 2, "same": 3}
_IMAGE_RANK = {"wrong": 0, "partly": 1, "failed": 2, "unscored": 3, "right": 4}


@dataclass(frozen=True)
class ViewOptions:
    """Where the images' data is (``--data-dir``; default: the run's own) and how many thumbnails, how big."""

    data_dir: Path | None = None
    max_images: int = DEFAULT_MAX_IMAGES
    thumb_px: int = THUMB_PX


@dataclass
class TaskView:
    """One task of the page: its rows, its breakdown fields and values, and why images are missing."""

    name: str
    result: TaskResult
    metric: str | None
    rows: list[dict[str, Any]]
    records: dict[str, SampleRecord]
    fields: dict[str, list[str]] = field(default_factory=dict)
    image_note: str | None = None
    box: bool = False
    pairs: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "primary": self.result.primary_metric, "metric": self.metric,
                "fields": self.fields, "note": self.image_note, "box": self.box, "pairs": self.pairs,
                "n": len(self.rows)}


@dataclass
class PageData:
    """Everything the page's script reads: the mode, the tasks, the rows and the thumbnails (base64 JPEG)."""

    mode: str  # "run" | "compare"
    tasks: list[TaskView]
    images: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        rows = [r for i, t in enumerate(self.tasks) for r in _tagged(t.rows, i)]
        if self.mode == "compare":
            rows.sort(key=lambda r: FLIP_ORDER[r["fl"]])  # stable: flips first, task and sample order kept
        return {"mode": self.mode, "tasks": [t.to_json() for t in self.tasks], "rows": rows, "images": self.images}


def _tagged(rows: list[dict[str, Any]], index: int) -> Iterator[dict[str, Any]]:
    for r in rows:
        r["t"] = index
        yield r


# -- rows ---------------------------------------------------------------------------------------------

def status(rec: SampleRecord, metric: str | None) -> str:
    if rec.error is not None:
        return "failed"
    score = rec.scores.get(metric) if metric else None
    if score is None:
        return "unscored"
    return "right" if score >= 1.0 else "wrong" if score <= 0.0 else "partly"


def _is_empty(rec: SampleRecord) -> bool:
    return rec.error is None and not (rec.output or "").strip()


def _status_metric(result: TaskResult, records: list[SampleRecord]) -> str | None:
    """The per-sample score compare judges flips by; None when no sample carries a score."""
    metric = _flip_metric(result.primary_metric, list(result.metrics), records)
    return metric if any(metric in r.scores for r in records) else None


def breakdown_fields(records: list[SampleRecord]) -> dict[str, list[str]]:
    """Metadata keys that group samples (answer type, question type, ...): scalar values, 2..40 distinct, each
    at most 48 characters."""
    values: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.metadata.items():
            if k in NOT_FIELDS or isinstance(v, (dict, list, float)) or v is None:
                continue
            seen = values.setdefault(k, set())
            if len(seen) <= MAX_FIELD_VALUES:
                seen.add(str(v) if len(str(v)) <= MAX_FIELD_TEXT else "\0too long")
    n = len(records)
    return {k: sorted(v) for k, v in sorted(values.items())
            if 2 <= len(v) <= MAX_FIELD_VALUES and (len(v) < n or n <= 2) and "\0too long" not in v}


def _side_fields(rec: SampleRecord, metric: str | None, pair_verdicts: dict[str, float]) -> dict[str, Any]:
    row: dict[str, Any] = {"s": status(rec, metric), "o": rec.output, "a": rec.parsed, "sc": rec.scores}
    if _is_empty(rec):
        row["e"] = 1
    if rec.error is not None:
        row["er"] = [rec.error_category or "error", rec.error]
    judge = rec.metadata.get("judge")
    if isinstance(judge, dict):
        row["j"] = judge
    pid = rec.metadata.get("pair_id")
    if pid is not None:
        row["pv"] = pair_verdicts.get(str(pid))
    return row


def _shared_fields(rec: SampleRecord, fields: dict[str, list[str]]) -> dict[str, Any]:
    row: dict[str, Any] = {"i": rec.id, "p": rec.prompt, "g": rec.target,
                           "m": {k: str(rec.metadata[k]) for k in fields if rec.metadata.get(k) is not None},
                           "md": {k: v for k, v in rec.metadata.items() if k != "judge"}}
    if rec.metadata.get("pair_id") is not None:
        row["pk"] = str(rec.metadata["pair_id"])
    w, h = rec.metadata.get("width"), rec.metadata.get("height")
    if isinstance(w, (int, float)) and isinstance(h, (int, float)):
        row["wh"] = [w, h]
    return row


def _is_box(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)


def _task_view(name: str, result: TaskResult, records: list[SampleRecord]) -> TaskView:
    metric = _status_metric(result, records)
    view = TaskView(name, result, metric, [], {r.id: r for r in records}, breakdown_fields(records))
    view.box = any(_is_box(r.target) and "iou" in r.scores for r in records)
    view.pairs = any(r.metadata.get("pair_id") is not None for r in records)
    return view


def run_view(side: RunSide) -> list[TaskView]:
    """One run's tasks, every sample a row, in the order stored."""
    views = []
    grades = _human_grades(side.run_dir)
    for name, result in side.record.tasks.items():
        records = _samples(side, name, result)
        view = _task_view(name, result, records)
        verdicts = pair_scores(records)
        for rec in records:
            row = {**_shared_fields(rec, view.fields), **_side_fields(rec, view.metric, verdicts)}
            if (grade := grades.get(name, {}).get(rec.id)) is not None:
                row["h"] = grade
            view.rows.append(row)
        views.append(view)
    return views


def compare_view(cmp: Comparison) -> list[TaskView]:
    """The samples both runs hold, per task compared; ``fl`` from compare's flips (all of them)."""
    views = []
    for t in cmp.tasks:
        b_res, c_res = cmp.baseline.record.tasks[t.task], cmp.candidate.record.tasks[t.task]
        b_recs, c_recs = _samples(cmp.baseline, t.task, b_res), _samples(cmp.candidate, t.task, c_res)
        c_by_id = {r.id: r for r in c_recs}
        view = _task_view(t.task, b_res, b_recs)
        view.metric = t.flip_metric if any(t.flip_metric in r.scores for r in b_recs) else None
        all_flips, _, _ = _flips(b_recs, c_recs, t.flip_metric, show=len(b_recs))
        flips = {f.id: _flip_kind(f.baseline_score, f.candidate_score) for f in all_flips}
        b_pairs, c_pairs = pair_scores(b_recs), pair_scores(c_by_id.values())
        for b in b_recs:
            c = c_by_id.get(b.id)
            if c is None:
                continue
            cand = _side_fields(c, view.metric, c_pairs)
            if c.prompt != b.prompt:
                cand["p"] = c.prompt
            view.rows.append({**_shared_fields(b, view.fields), "b": _side_fields(b, view.metric, b_pairs),
                              "c": cand, "fl": flips.get(b.id, "same")})
        views.append(view)
    return views


def _flip_kind(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "changed"  # no per-sample score: the parsed answer changed
    return "better" if after > before else "worse"


def _human_grades(run_dir: Path) -> dict[str, dict[str, str]]:
    """Grades imported by ``evalkit rate import`` (``<run>/ratings/<task>.json``), by task and sample id."""
    out: dict[str, dict[str, str]] = {}
    folder = Path(run_dir) / "ratings"
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            grades = json.loads(file.read_text(encoding="utf-8")).get("grades", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(grades, dict):
            out[file.stem] = {str(k): str(v) for k, v in grades.items()}
    return out


# -- images -------------------------------------------------------------------------------------------

def _rank(row: dict[str, Any]) -> tuple[int, int]:
    if "fl" in row:
        return FLIP_ORDER[row["fl"]], _IMAGE_RANK[row["c"]["s"]]
    return 0, _IMAGE_RANK[row["s"]]


def choose_images(views: list[TaskView], budget: int) -> dict[str, set[str]]:
    """Which samples get a thumbnail: wrong (flipped) ones first, then partly right, failed, unscored and right,
    in turn across tasks within each of those; both halves of a pair; at most ``budget`` samples in all.
    Returns sample ids by task."""
    order: list[tuple[tuple[int, int], int, int, dict[str, Any]]] = []
    partners: list[dict[str, list[str]]] = []
    for k, v in enumerate(views):
        by_pair: dict[str, list[str]] = {}
        seen: dict[tuple[int, int], int] = {}
        for r in v.rows:
            if "pk" in r:
                by_pair.setdefault(r["pk"], []).append(r["i"])
            rank = _rank(r)
            seen[rank] = seen.get(rank, -1) + 1
            order.append((rank, seen[rank], k, r))
        partners.append(by_pair)
    order.sort(key=lambda x: x[:3])
    chosen: dict[str, set[str]] = {v.name: set() for v in views}
    taken = 0
    for _, _, k, row in order:
        for sid in partners[k][row["pk"]] if "pk" in row else [row["i"]]:
            if taken >= budget:
                return chosen
            if sid not in chosen[views[k].name]:
                chosen[views[k].name].add(sid)
                taken += 1
    return chosen


def _open_task_samples(name: str, info: DatasetInfo, data_dir: Path | None) -> tuple[Iterator[Sample] | None, str]:
    """The task's samples, opened as ``evalkit run`` opens them, or None and why not."""
    from evalkit.tasks import get_task
    from evalkit.tasks.base import TaskContext

    try:
        data = get_task(name).load(TaskContext(data_dir=data_dir))
    except (UsageError, OSError, ImportError, ValueError) as exc:
        return None, f"images not shown: the data could not be opened ({exc})"
    found = data.dataset.content_hash
    if info.content_hash and found != info.content_hash:
        where = data.dataset.location or data.dataset.id
        return None, (f"images not shown: the data at {where} has content hash {found}, the run recorded "
                      f"{info.content_hash}; pass --data-dir with the copy the run read")
    if not info.content_hash:
        return data.samples, "the run recorded no content hash: images are from the data found, unverified"
    return data.samples, ""


def data_dir_for(side: RunSide, opts: ViewOptions) -> Path | None:
    if opts.data_dir is not None:
        if not Path(opts.data_dir).is_dir():
            raise UsageError(f"--data-dir {opts.data_dir}: no such folder")
        return Path(opts.data_dir)
    recorded = side.record.config.data_dir
    return Path(recorded) if recorded and Path(recorded).is_dir() else None


def thumbnail(image: Any, px: int) -> str:
    """A PIL image as a base64 JPEG whose longest side is at most ``px``."""
    img = image.copy()
    img.thumbnail((px, px))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def attach_images(views: list[TaskView], side: RunSide, opts: ViewOptions) -> list[str]:
    """Give the chosen rows thumbnails (``im``, and ``wh`` the original size); set each task's note on
    images that could not be shown. Returns the thumbnails, each image stored once."""
    if opts.max_images < 0:
        raise UsageError(f"--max-images {opts.max_images}: give a number >= 0")
    chosen = choose_images(views, opts.max_images)
    data_dir = data_dir_for(side, opts) if any(chosen.values()) else None
    thumbs: list[str] = []
    index_of: dict[str, int] = {}
    for view in views:
        wanted = chosen[view.name]
        if not wanted:
            if view.rows and opts.max_images == 0:
                view.image_note = "images not shown: --max-images 0"
            continue
        samples, note = _open_task_samples(view.name, side.record.tasks[view.name].dataset, data_dir)
        view.image_note = note or None
        if samples is None:
            continue
        # A later turn of a dialogue (OwlEval) is not in the loaded stream: it shows its first turn's image.
        alias: dict[str, list[str]] = {}
        for sid in wanted:
            first = view.records[sid].metadata.get("dialogue") if sid in view.records else None
            alias.setdefault(str(first) if first is not None else sid, []).append(sid)
        rows = {r["i"]: r for r in view.rows}
        missing = set(alias)
        for sample in samples:
            if sample.id not in missing:
                continue
            missing.discard(sample.id)
            found = _thumbs(sample, opts.thumb_px, thumbs, index_of)
            for sid in alias[sample.id]:
                row = rows[sid]
                row["im"] = [i for i, _ in found]
                if found and "wh" not in row:
                    row["wh"] = list(found[0][1])
            if not missing:
                break
        if missing and not view.image_note:
            view.image_note = f"{len(missing)} chosen samples are not in the data found (no image shown for them)"
    return thumbs


def _thumbs(sample: Sample, px: int, thumbs: list[str], index_of: dict[str, int]) -> list[tuple[int, tuple[int, int]]]:
    """(thumbnail index, original size) of each decodable image of the sample."""
    from evalkit.core.types import SampleError

    out = []
    for ref in sample.images:
        try:
            image = ref.load()
        except SampleError:
            continue
        key = ref.digest()
        if key not in index_of:
            index_of[key] = len(thumbs)
            thumbs.append(thumbnail(image, px))
        out.append((index_of[key], image.size))
    return out


def build_run_page(path: Path, opts: ViewOptions) -> tuple[RunSide, PageData]:
    side = load_side(path)
    views = run_view(side)
    images = attach_images(views, side, opts)
    return side, PageData("run", views, images)


def build_compare_page(cmp: Comparison, opts: ViewOptions) -> PageData:
    views = compare_view(cmp)
    images = attach_images(views, cmp.candidate, opts)
    return PageData("compare", views, images)
