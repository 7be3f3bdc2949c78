"""Blind human grading of OwlEval answers (the paper's protocol: grades A-D per answer).

    evalkit rate export RUN [RUN ...] --out DIR [--data-dir DIR] [--seed N]
    evalkit rate import DIR/rating.csv [--key DIR/key.json]

``export`` writes, into DIR:

- ``rating.html``: a self-contained sheet (images inline as data URLs, no network) showing each
  dialogue's image, every question and the runs' answers side by side as "Response 1..K", with
  A-D buttons and a "Download grades (CSV)" button that saves a CSV ``import`` reads;
- ``rating.csv``: the same items, one row per (question, response), with an empty ``grade`` column
  to fill in a spreadsheet instead;
- ``key.json``: which run is behind each response. Keep it from the raters: it unblinds the sheet.

Responses are shuffled per dialogue (seeded): within one dialogue "Response 2" is the same run on
every turn, so a rater can follow each conversation, while the order differs between dialogues.

``import`` reads the grades (blank = not rated), maps them back through the key and writes them to
``<run>/ratings/owleval.json`` in each run folder (a separate file: run.json and the samples are
not touched; importing again adds to and replaces earlier grades), then prints each run's
distribution of grades.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError

TASK = "owleval"
GRADES: dict[str, str] = {
    "A": "correct and satisfying response",
    "B": "acceptable response with minor imperfections",
    "C": "responds to the instruction but has significant errors",
    "D": "irrelevant or invalid response",
}
HTML_FILE, CSV_FILE, KEY_FILE = "rating.html", "rating.csv", "key.json"
KEY_FORMAT = "evalkit-rating-key/1"
CSV_COLUMNS = ("question_id", "response", "image", "question", "answer", "grade")


@dataclass
class Item:
    """One question of the sheet: what the rater sees, and which run answers as each response."""

    question_id: str
    question: str
    image: str
    dialogue: str
    turn: int
    answers: list[str]  # by response number - 1
    runs: list[int]  # run index behind each response


def _load_runs(paths: list[Path]) -> list[tuple[Path, Any, dict[str, Any]]]:
    from evalkit.core.results import read_run, read_samples

    runs = []
    for path in paths:
        run_dir = Path(path)
        record = read_run(run_dir)
        if TASK not in record.tasks:
            raise UsageError(f"{run_dir} has no {TASK} results; pass runs of `evalkit run --tasks {TASK}`")
        samples = {r.id: r for r in read_samples(run_dir, TASK)}
        runs.append((run_dir.resolve(), record, samples))
    return runs


def _answer_text(rec: Any) -> str:
    if rec is None:
        return "(no answer)"
    if rec.output is None:
        return f"(no answer: {rec.error})" if rec.error else "(no answer)"
    return rec.parsed if isinstance(rec.parsed, str) else rec.output


def build_items(runs: list[tuple[Path, Any, dict[str, Any]]], seed: int) -> list[Item]:
    ids = sorted({i for _, _, samples in runs for i in samples},
                 key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))
    rng = random.Random(seed)
    order: dict[str, list[int]] = {}
    items = []
    for qid in ids:
        meta = next(s[qid].metadata for _, _, s in runs if qid in s)
        dialogue = str(meta.get("dialogue", qid))
        if dialogue not in order:
            perm = list(range(len(runs)))
            rng.shuffle(perm)
            order[dialogue] = perm
        perm = order[dialogue]
        items.append(Item(question_id=qid, question=str(meta.get("question", "")), image=str(meta.get("image", "")),
                          dialogue=dialogue, turn=int(meta.get("turn") or 1),
                          answers=[_answer_text(runs[k][2].get(qid)) for k in perm], runs=perm))
    return items


def _image_src(root: Path | None, name: str) -> str | None:
    """The image as a data URL; None when missing, not an image, or outside ``root``/cases (a record naming
    ``../../etc/passwd`` must never put a local file into a sheet meant for external raters)."""
    from evalkit.backends.openai import sniff_mime
    from evalkit.core.types import SampleError, confined_path

    if root is None or not name:
        return None
    try:
        data = confined_path(root / "cases", name).read_bytes()
    except (OSError, SampleError):
        return None
    mime = sniff_mime(data)
    if mime is None or not mime.startswith("image/"):
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}
section{border-top:2px solid #888;padding:.5em 0 1.5em}img{max-width:420px;max-height:420px;display:block}
.q{font-weight:600;margin:.8em 0 .3em}.resp{border:1px solid #ccc;border-radius:6px;padding:.5em;margin:.4em 0}
pre{white-space:pre-wrap;font-family:inherit;margin:.3em 0}label{margin-right:1em}
#bar{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc}"""
_SCRIPT = """document.getElementById('download').onclick=function(){
var rows=['question_id,response,grade'];
document.querySelectorAll('input[type=radio]:checked').forEach(function(r){
rows.push(r.dataset.q+','+r.dataset.r+','+r.value);});
var a=document.createElement('a');a.href=URL.createObjectURL(new Blob([rows.join('\\n')+'\\n'],{type:'text/csv'}));
a.download='grades.csv';a.click();};"""


def render_html(items: list[Item], root: Path | None) -> str:
    esc = html.escape
    legend = "".join(f"<li><b>{g}</b>: {esc(text)}</li>" for g, text in GRADES.items())
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>OwlEval rating sheet</title>",
             f"<style>{STYLE}</style></head><body><h1>OwlEval rating sheet</h1>",
             f"<p>Grade every response. The responses come from different models, in an order shuffled per "
             f"dialogue.</p><ul>{legend}</ul>",
             "<div id='bar'><button id='download'>Download grades (CSV)</button></div>"]
    dialogue = None
    for item in items:
        if item.dialogue != dialogue:
            if dialogue is not None:
                parts.append("</section>")
            dialogue = item.dialogue
            src = _image_src(root, item.image)
            image = f"<img src='{src}' alt='{esc(item.image)}'>" if src else f"<p>(image {esc(item.image)} missing)</p>"
            parts.append(f"<section><h2>Image {esc(item.image)}</h2>{image}")
        turn = f", turn {item.turn}" if item.turn > 1 else ""
        parts.append(f"<p class='q'>Question {esc(item.question_id)}{turn}: {esc(item.question)}</p>")
        for r, answer in enumerate(item.answers, 1):
            buttons = "".join(f"<label><input type='radio' name='g-{esc(item.question_id)}-{r}' value='{g}' "
                              f"data-q='{esc(item.question_id)}' data-r='{r}'> {g}</label>" for g in GRADES)
            parts.append(f"<div class='resp'><b>Response {r}</b><pre>{esc(answer)}</pre>{buttons}</div>")
    if dialogue is not None:
        parts.append("</section>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "".join(parts)


def export_sheet(run_paths: list[Path], out: Path, data_dir: Path | None = None, seed: int = 0) -> dict[str, Path]:
    """Write rating.html, rating.csv and key.json into ``out``; returns their paths by kind."""
    from evalkit.tasks.owleval import find_root

    if not run_paths:
        raise UsageError("rate export: give at least one run folder")
    runs = _load_runs(run_paths)
    if len({p for p, _, _ in runs}) != len(runs):
        raise UsageError("rate export: the same run is given twice")
    if data_dir is None:
        data_dir = next((Path(r.config.data_dir) for _, r, _ in runs if r.config.data_dir), None)
    if data_dir is None:
        raise UsageError("rate export: the runs do not record their --data-dir; pass --data-dir (the folder "
                         "holding OwlEval/) so the sheet can show the images")
    root = find_root(Path(data_dir))
    items = build_items(runs, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / HTML_FILE).write_text(render_html(items, root), encoding="utf-8")
    with open(out / CSV_FILE, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for item in items:
            for r, answer in enumerate(item.answers, 1):
                writer.writerow([item.question_id, r, item.image, item.question, answer, ""])
    key = {"format": KEY_FORMAT, "task": TASK, "seed": seed,
           "runs": [{"path": str(p), "run_id": r.run_id, "model": r.model.name} for p, r, _ in runs],
           "responses": {item.question_id: item.runs for item in items}}
    (out / KEY_FILE).write_text(json.dumps(key, indent=2), encoding="utf-8")
    return {"html": out / HTML_FILE, "csv": out / CSV_FILE, "key": out / KEY_FILE}


def _read_key(path: Path) -> dict[str, Any]:
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no rating key at {path}; pass --key (the key.json `evalkit rate export` wrote)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a rating key: {exc}") from exc
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT:
        raise UsageError(f"{path} is not a rating key written by `evalkit rate export`")
    return key


def read_grades(csv_path: Path, key: dict[str, Any]) -> dict[int, dict[str, str]]:
    """run index -> {question_id: grade} from a filled sheet (blank grades are skipped)."""
    rows = read_table(csv_path, {"question_id", "response", "grade"},
                      "grade the rating.csv that `evalkit rate export` wrote, or the CSV its HTML sheet downloads")
    grades: dict[int, dict[str, str]] = {}
    for line, row in enumerate(rows, 2):
        grade = (row.get("grade") or "").strip().upper()
        if not grade:
            continue
        if grade not in GRADES:
            raise UsageError(f"{csv_path}:{line}: grade {grade!r} is not one of A, B, C, D (leave it empty to skip)")
        qid, response = (row.get("question_id") or "").strip(), (row.get("response") or "").strip()
        runs = key["responses"].get(qid)
        if runs is None or not response.isdigit() or not 1 <= int(response) <= len(runs):
            raise UsageError(f"{csv_path}:{line}: question {qid!r} response {response!r} is not in the rating key")
        run = runs[int(response) - 1]
        if grades.setdefault(run, {}).setdefault(qid, grade) != grade:
            raise UsageError(f"{csv_path}:{line}: question {qid} response {response} is graded twice, differently")
    return grades


def read_table(csv_path: Path, required: set[str], fix: str) -> list[dict[str, str]]:
    """The rows of a filled CSV sheet (row i is on line i + 2); UsageError when unreadable or lacking a column.
    Shared with evalkit.commands.annotate_pairs, as is STYLE."""
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
            columns = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {csv_path}: {exc}") from exc
    missing = required - columns
    if rows and missing:
        raise UsageError(f"{csv_path} lacks the column(s) {', '.join(sorted(missing))}; {fix}")
    return rows


def distribution(grades: dict[str, str]) -> dict[str, int]:
    return {g: sum(1 for v in grades.values() if v == g) for g in GRADES}


def import_grades(csv_path: Path, key_path: Path | None = None) -> list[dict[str, Any]]:
    """Write each run's grades to ``<run>/ratings/owleval.json``; returns one summary per run of the key."""
    csv_path = Path(csv_path)
    key = _read_key(Path(key_path) if key_path else csv_path.parent / KEY_FILE)
    grades = read_grades(csv_path, key)
    summaries = []
    for index, run in enumerate(key["runs"]):
        run_dir = Path(run["path"])
        if not (run_dir / "run.json").is_file():
            raise UsageError(f"run folder {run_dir} from the rating key is gone; move it back or edit the key's path")
        file = run_dir / "ratings" / f"{TASK}.json"
        merged: dict[str, str] = {}
        if file.is_file():
            try:
                merged = dict(json.loads(file.read_text(encoding="utf-8")).get("grades", {}))
            except (OSError, ValueError, AttributeError):
                merged = {}
        merged.update(grades.get(index, {}))
        n_answers = len(key["responses"])
        summary = {"task": TASK, "run_id": run["run_id"], "model": run["model"], "source": str(csv_path.resolve()),
                   "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "grades": dict(sorted(merged.items(), key=lambda kv: (len(kv[0]), kv[0]))),
                   "distribution": distribution(merged), "n_rated": len(merged), "n_questions": n_answers}
        file.parent.mkdir(exist_ok=True)
        file.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        summaries.append({**summary, "path": str(file)})
    return summaries


def format_summary(summaries: list[dict[str, Any]]) -> str:
    lines = []
    for s in summaries:
        n = s["n_rated"] or 1
        dist = "  ".join(f"{g} {c:3d} ({100 * c / n:5.1f}%)" for g, c in s["distribution"].items())
        lines.append(f"{s['model']} ({s['run_id']}): {dist}  rated {s['n_rated']}/{s['n_questions']}")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    files = export_sheet(args.runs, args.out, data_dir=args.data_dir, seed=args.seed)
    print(f"wrote {files['html']} and {files['csv']} for the raters; keep {files['key']} (it unblinds the sheet)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    print(format_summary(import_grades(args.csv, args.key)))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rate", help="blind human grading (A-D) of OwlEval answers: export a sheet, import grades")
    rate = p.add_subparsers(dest="rate_command", required=True, parser_class=type(p))
    e = rate.add_parser("export", help="write a blind rating sheet (HTML + CSV) of several runs' answers")
    e.add_argument("runs", nargs="+", type=Path, help="run folders (with owleval results)")
    e.add_argument("--out", type=Path, required=True, help="folder for rating.html, rating.csv and key.json")
    e.add_argument("--data-dir", type=Path, default=None, help="folder holding OwlEval/ (default: the runs' own)")
    e.add_argument("--seed", type=int, default=0, help="seed of the response order")
    e.set_defaults(func=cmd_export)
    i = rate.add_parser("import", help="read A-D grades back into the runs and print their distribution")
    i.add_argument("csv", type=Path, help="the filled rating.csv (or the CSV the HTML sheet downloaded)")
    i.add_argument("--key", type=Path, default=None, help="the key.json of the export (default: next to the CSV)")
    i.set_defaults(func=cmd_import)
