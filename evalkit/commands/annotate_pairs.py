"""Writing the questions of mined pairs (``evalkit mine-pairs``), in a browser or a spreadsheet.

    evalkit annotate-pairs DIR                    # writes DIR/annotate.html and DIR/annotations.csv
    evalkit annotate-pairs DIR --import FILLED    # reads a filled sheet back into DIR's MMVP folders

``annotate.html`` is self-contained (images inline, no network): per pair both images, a question, two options, the
right option for each image, optionally the MMVP-VLM statement for each image and its visual pattern (Type), or
"drop" to leave the pair out; what is typed is kept in the browser between visits, and "Download answers (CSV)"
saves the sheet. ``annotations.csv`` holds the same columns for a spreadsheet. Both start from what was imported
before, so a sheet can be filled in several sittings.

``--import`` checks every row (evalkit.mining.annotations.parse_row): a written pair needs a question, two
different options and a different right option per image. Good rows are merged into DIR/annotations.json (rows
left empty change nothing), the MMVP and MMVP-VLM folders are written again, and each bad row is reported with its
line (exit 2); the filled file is never changed, so nothing typed is lost. The export/import shape is the one of
``evalkit rate`` (evalkit.commands.rating), whose sheet style and CSV reader this module uses.
"""

from __future__ import annotations

import argparse
import base64
import csv
import dataclasses
import html
import json
import sys
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError

HTML_FILE, CSV_FILE = "annotate.html", "annotations.csv"
PAIR_COLUMNS = ("pair", "image_1", "image_2", "clip", "ssl")


def _columns() -> tuple[str, ...]:
    from evalkit.mining.annotations import COLUMNS

    return PAIR_COLUMNS + COLUMNS


def _pair_cells(pair: Any, note: Any) -> dict[str, str]:
    cells = {"pair": str(pair.pair), "image_1": pair.images[0], "image_2": pair.images[1],
             "clip": f"{pair.clip:.4f}", "ssl": f"{pair.ssl:.4f}"}
    for name, value in dataclasses.asdict(note).items():
        cells[name] = ("yes" if value else "") if isinstance(value, bool) else value
    return cells


_FORM_STYLE = """.imgs{display:flex;gap:1em}figure{margin:0}figcaption{font-size:.85em;color:#555}
input[type=text]{width:100%;box-sizing:border-box;margin:.15em 0 .5em}.row{display:flex;gap:1em}.row>label{flex:1}
.small{font-size:.9em;color:#555}"""
_FORM_SCRIPT = """var KEY='evalkit-annotate:'+document.body.dataset.key;
function sections(){return document.querySelectorAll('section[data-pair]');}
function value(s,col){var els=s.querySelectorAll('[data-col='+col+']');for(var i=0;i<els.length;i++){var e=els[i];
if(e.type==='radio'){if(e.checked)return e.value;}else if(e.type==='checkbox'){return e.checked?'yes':'';}
else return e.value;}return '';}
function set(s,col,v){s.querySelectorAll('[data-col='+col+']').forEach(function(e){
if(e.type==='radio')e.checked=(e.value===v);else if(e.type==='checkbox')e.checked=!!v;else e.value=v;});}
function q(v){v=String(v);return /[",\\n]/.test(v)?'"'+v.replace(/"/g,'""')+'"':v;}
var COLS=JSON.parse(document.body.dataset.cols);
function state(){var out={};sections().forEach(function(s){var row={};COLS.forEach(function(c){row[c]=value(s,c);});
out[s.dataset.pair]=row;});return out;}
try{var saved=JSON.parse(localStorage.getItem(KEY)||'{}');sections().forEach(function(s){var row=saved[s.dataset.pair];
if(row)COLS.forEach(function(c){if(c in row)set(s,c,row[c]);});});}catch(e){}
document.addEventListener('input',function(){try{localStorage.setItem(KEY,JSON.stringify(state()));}catch(e){}});
function csvText(){var head=['pair','image_1','image_2'].concat(COLS);
var rows=[head.join(',')];sections().forEach(function(s){var r=[s.dataset.pair,s.dataset.image1,s.dataset.image2];
COLS.forEach(function(c){r.push(value(s,c));});rows.push(r.map(q).join(','));});return rows.join('\\n')+'\\n';}
document.getElementById('download').onclick=function(){var a=document.createElement('a');
a.href=URL.createObjectURL(new Blob([csvText()],{type:'text/csv'}));a.download='annotations-filled.csv';a.click();};"""


def render_form(out: Path, pairs: list[Any], notes: dict[int, Any], key: str) -> str:
    from evalkit.commands.rating import STYLE
    from evalkit.mining.annotations import COLUMNS, Annotation
    from evalkit.tasks.mmvp_vlm import PATTERNS

    esc = html.escape
    types = "".join(f"<option value='{esc(t)}'>{esc(name)}</option>" for t, name in PATTERNS.items())
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Mined pairs: write the questions</title>",
             f"<style>{STYLE}{_FORM_STYLE}</style></head>",
             f"<body data-key='{esc(key)}' data-cols='{esc(json.dumps(list(COLUMNS)))}'>",
             "<h1>Mined pairs: write the questions</h1><p>For each pair write one question whose right answer differs "
             "between the two images (as in MMVP), its two options, and which option is right for each image. "
             "Optionally write, for MMVP-VLM, a statement true of each image and the visual pattern. Tick "
             "<i>drop</i> for a pair not worth a question; leave a pair empty to write it later. What you type is "
             "kept in this browser; download the answers and import them with <code>evalkit annotate-pairs DIR "
             "--import FILE</code>.</p>", f"<datalist id='types'>{types}</datalist>",
             "<div id='bar'><button id='download'>Download answers (CSV)</button></div>"]
    for p in pairs:
        cells = _pair_cells(p, notes.get(p.pair, Annotation()))
        figures = []
        for side in (1, 2):
            data = base64.b64encode((out / p.image_file(side)).read_bytes()).decode("ascii")
            figures.append(f"<figure><img src='data:image/jpeg;base64,{data}' alt='image {side}'><figcaption>"
                           f"Image {side}: {esc(p.images[side - 1])}</figcaption></figure>")

        def text(col: str, label: str, extra: str = "") -> str:
            return (f"<label>{label}<input type='text' data-col='{col}' value='{esc(cells[col])}'{extra}></label>")

        def radios(col: str, side: int) -> str:
            return f"Right option for image {side}: " + " ".join(
                f"<label><input type='radio' name='{col}-{p.pair}' data-col='{col}' value='{v}'"
                f"{' checked' if cells[col] == v else ''}> ({v})</label>" for v in "ab")

        checked = " checked" if cells["drop"] else ""
        parts.append(
            f"<section data-pair='{p.pair}' data-image1='{esc(p.images[0])}' data-image2='{esc(p.images[1])}'>"
            f"<h2>Pair {p.pair} <span class='small'>CLIP {p.clip:.3f}, SSL {p.ssl:.3f}</span></h2>"
            f"<div class='imgs'>{''.join(figures)}</div>{text('question', 'Question')}"
            f"<div class='row'>{text('option_a', 'Option (a)')}{text('option_b', 'Option (b)')}</div>"
            f"<p>{radios('answer_1', 1)} &nbsp; {radios('answer_2', 2)}</p>"
            f"<div class='row'>{text('statement_1', 'MMVP-VLM statement, image 1')}"
            f"{text('statement_2', 'MMVP-VLM statement, image 2')}"
            f"{text('type', 'Visual pattern (Type)', ' list=types')}</div>"
            f"<label><input type='checkbox' data-col='drop'{checked}> drop this pair</label></section>")
    parts.append(f"<script>{_FORM_SCRIPT}</script></body></html>")
    return "".join(parts)


def export_form(out: Path) -> dict[str, Path]:
    """Write DIR/annotate.html and DIR/annotations.csv (prefilled with what was imported before)."""
    from evalkit.mining.annotations import Annotation, read_annotations
    from evalkit.mining.export import MINING_FILE, read_pairs

    out = Path(out)
    pairs, notes = read_pairs(out), read_annotations(out)
    if not pairs:
        raise UsageError(f"{out} holds no mined pairs; mine with lower --clip-min or higher --ssl-max")
    try:
        key = json.loads((out / MINING_FILE).read_text(encoding="utf-8")).get("created_at", "")
    except (OSError, ValueError):
        key = ""
    (out / HTML_FILE).write_text(render_form(out, pairs, notes, f"{out.resolve()}@{key}"), encoding="utf-8")
    with open(out / CSV_FILE, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_columns())
        writer.writeheader()
        for p in pairs:
            writer.writerow(_pair_cells(p, notes.get(p.pair, Annotation())))
    return {"html": out / HTML_FILE, "csv": out / CSV_FILE}


@dataclasses.dataclass
class ImportResult:
    imported: int  # rows with something written or dropped
    errors: list[str]  # "FILE:LINE: pair N: why", one per bad row
    views: Any  # evalkit.mining.export.Views


def import_filled(out: Path, filled: Path) -> ImportResult:
    """Merge the good rows of ``filled`` into DIR/annotations.json and write the MMVP folders again."""
    from evalkit.commands.rating import read_table
    from evalkit.mining.annotations import COLUMNS, parse_row, read_annotations, write_annotations
    from evalkit.mining.export import read_pairs, write_views

    out, filled = Path(out), Path(filled)
    pairs = {p.pair: p for p in read_pairs(out)}
    notes = read_annotations(out)
    rows = read_table(filled, {"pair", *COLUMNS}, f"fill the {CSV_FILE} that `evalkit annotate-pairs` wrote, or "
                                                  f"the CSV its {HTML_FILE} downloads")
    errors, seen, imported = [], {}, 0
    for line, row in enumerate(rows, 2):
        where = f"{filled}:{line}"
        cell = (row.get("pair") or "").strip()
        pair = pairs.get(int(cell)) if cell.isdigit() else None
        if pair is None:
            errors.append(f"{where}: pair {cell!r} is not one of the {len(pairs)} mined pairs")
            continue
        if pair.pair in seen:
            errors.append(f"{where}: pair {pair.pair} again (first on line {seen[pair.pair]})")
            continue
        seen[pair.pair] = line
        named = [(row.get(f"image_{s}") or "").strip() for s in (1, 2)]
        if any(named) and named != list(pair.images):
            errors.append(f"{where}: pair {pair.pair} shows {named[0]}, {named[1]} here but "
                          f"{pair.images[0]}, {pair.images[1]} in {out}; is this a sheet of another mining?")
            continue
        try:
            note = parse_row(row)
        except ValueError as exc:
            errors.append(f"{where}: pair {pair.pair}: {exc}")
            continue
        if note is None:
            continue
        old = notes.get(pair.pair)
        if note.drop and old is not None and not note.question:  # only "drop" ticked: keep what was written
            note = dataclasses.replace(old, drop=True)
        notes[pair.pair] = note
        imported += 1
    if imported:
        write_annotations(out, notes)
    return ImportResult(imported=imported, errors=errors, views=write_views(out))


def cmd_annotate(args: argparse.Namespace) -> int:
    if args.import_file is None:
        files = export_form(args.dir)
        print(f"wrote {files['html']} (open it in a browser) and {files['csv']} (for a spreadsheet); import the "
              f"filled one with `evalkit annotate-pairs {args.dir} --import FILE`")
        return 0
    result = import_filled(args.dir, args.import_file)
    v = result.views
    print(f"imported {result.imported} pair(s) from {args.import_file}; {args.dir}/MMVP/MMVP has {v.mmvp_pairs} "
          f"pairs ({v.written} written, {v.mmvp_pairs - v.written} to write, {v.dropped} dropped), "
          f"MMVP_VLM {v.vlm_pairs} pairs")
    if v.mmvp_pairs - v.written:
        print("a run counts the questions still to write as bad records", file=sys.stderr)
    if result.errors:
        print("\n".join(result.errors), file=sys.stderr)
        raise UsageError(f"{len(result.errors)} row(s) not imported (listed above; the rest were); fix them in "
                         f"{args.import_file} and import it again")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("annotate-pairs", help="write the questions of mined pairs: export an HTML/CSV sheet, "
                                              "import it filled")
    p.add_argument("dir", type=Path, help="the --out folder of `evalkit mine-pairs`")
    p.add_argument("--import", dest="import_file", type=Path, default=None, metavar="FILLED",
                   help="a filled annotations CSV (the sheet's download or the spreadsheet) to import")
    p.set_defaults(func=cmd_annotate)
