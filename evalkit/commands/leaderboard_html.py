"""The leaderboard as one self-contained HTML page: inline CSS and JS, no network, sortable by any column,
with a details view per run (config, environment, per-task metrics and telemetry).

Everything shown comes from result files and is HTML-escaped here, in Python; the script only reorders
and shows/hides rows and never builds markup from data. A Content-Security-Policy allows only this
page's own script and style (by hash), so even an unescaped injection could neither run nor load.

URL hash (for links and headless checks): ``#sort=KEY`` sorts ascending, ``#sort=-KEY`` descending,
``open=RUN_ID`` (or ``open=all``) opens details, e.g. ``index.html#sort=-task:vqav2_val&open=all``.
Keys: model, checkpoint, backend, date, task:<name>, samples_per_s, gen_tok_s, memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from evalkit.commands.leaderboard_table import Column, Entry, Leaderboard, fmt, table_columns

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}p.meta{color:#5b6475;margin:0 0 16px}
#board{border-collapse:collapse;width:100%}
#board>thead>tr>th,#board>tbody>tr>td{padding:6px 10px;border-bottom:1px solid #e3e6ec;text-align:left;
vertical-align:top}
#board>thead>tr>th{position:sticky;top:0;background:#f4f6fa;cursor:pointer;user-select:none;white-space:nowrap}
#board>thead>tr>th:focus{outline:2px solid #4c7be8}
#board>thead>tr>th[aria-sort=ascending]::after{content:" \\25B2"}
#board>thead>tr>th[aria-sort=descending]::after{content:" \\25BC"}
#board>thead>tr>th.num,#board>tbody>tr>td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
#board>tbody>tr>td.wrap{word-break:break-all;max-width:28em}#board>tbody>tr>td.nowrap{white-space:nowrap}
tbody.run:hover tr.summary{background:#f8f9fc}tbody.incomplete tr.summary{background:#fff8e6}
.badge{display:inline-block;margin-left:6px;padding:0 6px;border-radius:8px;background:#f0b429;color:#3a2a00;
font-size:12px}
button.toggle{border:0;background:none;cursor:pointer;font-size:14px;padding:0 4px}
a.view{margin-left:8px;font-size:12px}
#board>tbody>tr.details>td{background:#fafbfd;padding:12px 16px}
.details h3{font-size:14px;margin:10px 0 4px}.details table{border-collapse:collapse;margin-bottom:6px}
.details td,.details th{padding:2px 12px 2px 0;font-size:13px;text-align:left;vertical-align:top}
.details th{color:#5b6475;font-weight:600}
.details pre{background:#f1f3f7;padding:8px;border-radius:4px;overflow:auto;max-width:100%;margin:0}
"""

_JS = """
(function () {
  var table = document.getElementById("board");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells).filter(function (th) { return th.dataset.key; });
  function headFor(key) { return heads.filter(function (h) { return h.dataset.key === key; })[0]; }
  function sortBy(key, dir) {
    var th = headFor(key);
    if (!th) { return false; }
    var idx = th.cellIndex, numeric = th.dataset.type === "num";
    var bodies = Array.prototype.slice.call(table.tBodies);
    function val(body) { return body.rows[0].cells[idx].dataset.sort; }
    bodies.sort(function (a, b) {
      var x = val(a), y = val(b);
      if (x === "" || y === "") { return (x === "") - (y === ""); }  /* missing values last either way */
      var r = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return dir === "desc" ? -r : r;
    });
    bodies.forEach(function (b) { table.appendChild(b); });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === "desc" ? "descending" : "ascending");
    table.dataset.sortKey = key;
    table.dataset.sortDir = dir;
    return true;
  }
  function toggle(body, open) {
    var row = body.rows[1], btn = body.querySelector("button.toggle");
    var show = open === undefined ? row.hidden : open;
    row.hidden = !show;
    btn.setAttribute("aria-expanded", String(show));
    btn.textContent = show ? "\\u25BE" : "\\u25B8";
  }
  heads.forEach(function (th) {
    th.addEventListener("click", function () {
      var same = table.dataset.sortKey === th.dataset.key;
      var first = th.dataset.type === "num" ? "desc" : "asc";  /* numbers: best first */
      var dir = same ? (table.dataset.sortDir === "asc" ? "desc" : "asc") : first;
      sortBy(th.dataset.key, dir);
    });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); th.click(); }
    });
  });
  table.addEventListener("click", function (e) {
    var btn = e.target.closest("button.toggle");
    if (btn) { toggle(btn.closest("tbody")); }
  });
  function fromHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    var s = params.get("sort"), o = params.get("open");
    if (s) { sortBy(s.charAt(0) === "-" ? s.slice(1) : s, s.charAt(0) === "-" ? "desc" : "asc"); }
    if (o) {
      Array.prototype.forEach.call(table.tBodies, function (b) {
        if (o === "all" || b.dataset.run === o) { toggle(b, true); }
      });
    }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _attr(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _kv_table(pairs: Sequence[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape('-' if v is None else str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _details(e: Entry) -> str:
    r, m, tel = e.record, e.record.model, e.record.telemetry
    run = [("run id", r.run_id), ("folder", e.relpath), ("status", r.status), ("created", r.created_at),
           ("finished", r.finished_at), ("model", m.name), ("family", m.family), ("checkpoint", m.checkpoint),
           ("revision", m.revision), ("model type", m.model_type), ("weights fingerprint", m.fingerprint),
           ("backend", r.backend), ("schema", r.schema_version)]
    timing = [("wall s", tel.wall_s), ("load s", tel.load_s), ("generate s", tel.generate_s), ("data s", tel.data_s),
              ("score s", tel.score_s), ("prompt tokens", tel.n_prompt_tokens),
              ("generated tokens", tel.n_generated_tokens), ("peak RSS MB", tel.peak_rss_mb),
              ("peak GPU MB", tel.peak_gpu_memory_mb)]
    head = ("<tr><th>task</th><th>metric</th><th>value</th><th>± stderr</th><th>n</th><th>errors</th><th>empty</th>"
            "<th>dataset</th><th>content hash</th><th>samples/s</th><th>gen tok/s</th></tr>")
    rows = []
    for name, t in r.tasks.items():
        for metric, v in t.metrics.items():
            label = metric + (" (primary)" if metric == t.primary_metric else "")
            ds = t.dataset
            rows.append("<tr>" + "".join(f"<td>{escape(str(x))}</td>" for x in (
                name, label, fmt(v.value), fmt(v.stderr), v.n, t.n_errors, t.n_empty,
                f"{ds.id} [{ds.split}]", ds.content_hash or "-", fmt(t.telemetry.samples_per_s),
                fmt(t.telemetry.generated_tokens_per_s, 1))) + "</tr>")
    notes = [f"{name}: {note}" for name, t in r.tasks.items() for note in t.notes]
    config = json.dumps(r.config.model_dump(mode="json"), indent=2, ensure_ascii=False)
    env = sorted(r.environment.items())
    return ("<div class='details'>"
            f"<h3>Run</h3>{_kv_table(run)}"
            f"<h3>Per-task metrics</h3><table>{head}{''.join(rows)}</table>"
            + (f"<h3>Notes</h3><ul>{''.join(f'<li>{escape(n)}</li>' for n in notes)}</ul>" if notes else "")
            + f"<h3>Config</h3><pre>{escape(config)}</pre>"
            f"<h3>Environment</h3>{_kv_table(list(env)) if env else '<p>-</p>'}"
            f"<h3>Telemetry</h3>{_kv_table(timing)}</div>")


def _view_href(view: Path, base: Path | None) -> str:
    """The viewer page's address: relative to the folder the leaderboard page is written to (so a published
    folder holding both keeps working), else an absolute file:// address."""
    if base is None:
        return view.resolve().as_uri()
    return quote(Path(os.path.relpath(view.resolve(), base.resolve())).as_posix())


def _cell(c: Column, e: Entry, base: Path | None = None) -> str:
    value = c.value(e)
    cls = "num" if c.numeric else {"checkpoint": "wrap", "date": "nowrap"}.get(c.key, "")
    text = escape(c.text(e))
    if c.key == "model" and not e.complete:
        text += f"<span class='badge'>{escape(e.record.status)}</span>"
    if c.key == "model" and (view := e.run_dir / "view.html").is_file():  # written by `evalkit view RUN`
        text += (f"<a class='view' href='{_attr(_view_href(view, base))}' title='the samples (evalkit view)'>"
                 "samples</a>")
    return f"<td class='{cls}' data-key='{_attr(c.key)}' data-sort='{_attr(value)}'>{text}</td>"


def render_html(lb: Leaderboard, base: Path | None = None) -> str:
    """The whole page as a string (write it with UTF-8). ``base``: the folder the page is written to, so links to
    each run's viewer page are relative to it."""
    cols = table_columns(lb)
    heads = "".join(f"<th class='{'num' if c.numeric else ''}' data-key='{_attr(c.key)}' "
                    f"data-type='{'num' if c.numeric else 'text'}' tabindex='0' scope='col'>{escape(c.title)}</th>"
                    for c in cols)
    bodies = []
    for e in lb.entries:
        cells = "".join(_cell(c, e, base) for c in cols)
        cls = "run" if e.complete else "run incomplete"
        bodies.append(
            f"<tbody class='{cls}' data-run='{_attr(e.record.run_id)}'>"
            f"<tr class='summary'><td><button class='toggle' type='button' aria-expanded='false' "
            f"title='details'>\u25b8</button></td>{cells}</tr>"
            f"<tr class='details' hidden><td colspan='{len(cols) + 1}'>{_details(e)}</td></tr></tbody>")
    skipped = "".join(f"<li>{escape(s)}</li>" for s in lb.skipped)
    csp = (f"default-src 'none'; img-src data:; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
           "base-uri 'none'; form-action 'none'")
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_attr(csp)}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>evalkit leaderboard ({len(lb.entries)} runs)</title><style>{_CSS}</style></head><body>"
        "<h1>evalkit leaderboard</h1>"
        f"<p class='meta'>{len(lb.entries)} runs, {len(lb.columns)} tasks. Scores: primary metric ± standard error. "
        "Peak memory: GPU where the run had one, else process RSS. Click a column header to sort, \u25b8 for a "
        "run's details.</p>"
        f"<table class='board' id='board'><thead><tr><th scope='col'></th>{heads}</tr></thead>{''.join(bodies)}"
        "</table>"
        + (f"<h3>Skipped files</h3><ul>{skipped}</ul>" if skipped else "")
        + f"<script>{_JS}</script></body></html>\n"
    )
