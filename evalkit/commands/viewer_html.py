"""The sample viewer as one self-contained HTML page: inline CSS and JS, the samples as an embedded data block,
nothing fetched.

Safety: every string comes from a model, a dataset or a run file and is untrusted. What Python writes into the
markup (run header, metric tables, the comparison summary) is HTML-escaped here. The samples travel as gzipped
JSON in base64 (an alphabet that cannot close a ``<script>`` element) and the script builds the cards with
``createElement`` and ``textContent`` only, never from markup. A Content-Security-Policy admits only this
page's own script and style (by hash) and ``data:`` images, so even an injection that got through could neither
run nor load anything.

Size: rows are gzipped (prompts repeat their chat template, so they compress well) and the script renders
one page of cards at a time, so 200k samples stay responsive; see docs/viewer.md for measured figures.

URL hash (filters, for links and headless checks): ``task=NAME``, ``status=right|wrong|partly|failed|unscored|
empty``, ``flip=worse|better|changed|same|flipped`` (two runs), ``f.FIELD=VALUE`` (a breakdown field),
``q=TEXT`` (search), ``page=N``.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
from html import escape
from typing import TYPE_CHECKING, Any

from evalkit.commands.leaderboard import score_text
from evalkit.commands.leaderboard_html import _csp_hash

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.commands.compare import Comparison, RunSide
    from evalkit.commands.viewer_data import PageData

PAGE_SIZE = 50

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:20px;color:#1d2330;background:#fff}
h1{font-size:21px;margin:0 0 4px}p.meta{color:#5b6475;margin:0 0 10px;word-break:break-all}
table.sum{border-collapse:collapse;margin:6px 0 12px}
table.sum td,table.sum th{padding:3px 10px;border-bottom:1px solid #e3e6ec;text-align:left;vertical-align:top;font-size:13px}
table.sum th{background:#f4f6fa}.note{color:#8a5a00}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre.cmp{white-space:pre;overflow:auto;background:#f6f7fa;padding:8px;border-radius:4px;max-height:420px}
#controls{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #d9dde5;padding:8px 0;
display:flex;flex-wrap:wrap;gap:6px;align-items:center}
#controls select,#controls input{font:inherit;padding:3px 6px}#f-q{min-width:16em}
#statuses button{font:inherit;border:1px solid #c9ced8;background:#fff;border-radius:12px;padding:2px 10px;
cursor:pointer}#statuses button[aria-pressed=true]{background:#1d2330;color:#fff;border-color:#1d2330}
#summary{margin-left:auto;color:#5b6475}#notice{color:#8a5a00}
nav.pager{margin:10px 0;display:flex;gap:8px;align-items:center}nav.pager button{font:inherit}
article.card{border:1px solid #dfe3ea;border-left:5px solid #c9ced8;border-radius:6px;margin:10px 0;padding:8px 12px}
article.st-right{border-left-color:#2e9d4a}article.st-wrong{border-left-color:#d23b3b}
article.st-partly{border-left-color:#e0a317}article.st-failed{border-left-color:#7a3fc4}
.chead{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap;margin-bottom:6px}
.chead .id{font-weight:600;word-break:break-all}.chead .task{color:#5b6475}
.badge{display:inline-block;padding:0 7px;border-radius:8px;font-size:12px;background:#eef0f4}
.b-right{background:#d9f2df}.b-wrong{background:#f8dcdc}.b-partly{background:#fbefcf}.b-failed{background:#eadcf8}
.b-worse{background:#d23b3b;color:#fff}.b-better{background:#2e9d4a;color:#fff}.b-changed{background:#e0a317}
.pairrow{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:10px}
.sample{display:flex;gap:12px;align-items:flex-start}.pairrow .sample{border-top:1px dashed #d9dde5;padding-top:6px}
.media{flex:0 0 auto;width:176px}.media img,.media svg{width:176px;height:auto;display:block;background:#f1f3f7;
border:1px solid #e3e6ec}
.media .px{image-rendering:pixelated}.noimg{width:176px;color:#8a93a5;font-size:12px}
.fields{flex:1;min-width:0}.fields dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 10px;margin:0}
.fields dt{color:#5b6475;font-size:12.5px}.fields dd{margin:0;min-width:0}
.two{display:grid;grid-template-columns:1fr 1fr;gap:8px}.two>div{min-width:0}.two h4{margin:0;font-size:12px;color:#5b6475}
.err{color:#7a3fc4}ul.refs{margin:0;padding-left:18px}details summary{cursor:pointer;color:#5b6475;font-size:12.5px}
svg .box-target{fill:none;stroke:#2e9d4a;stroke-width:2px}svg .box-pred{fill:none;stroke:#d23b3b;stroke-width:2px}
svg .box-base{fill:none;stroke:#4c7be8;stroke-width:2px;stroke-dasharray:3 2}svg .canvas{fill:#f1f3f7}
svg .box-target,svg .box-pred,svg .box-base{vector-effect:non-scaling-stroke}
.legend span{margin-right:8px;font-size:12px}.lg-t{color:#2e9d4a}.lg-p{color:#d23b3b}.lg-b{color:#4c7be8}
"""

_JS = r"""
(function () {
  "use strict";
  var PAGE = __PAGE__, NS = "http://www.w3.org/2000/svg";
  var STATUSES = ["right", "wrong", "partly", "failed", "unscored", "empty"];
  var LABELS = {right: "right", wrong: "wrong", partly: "partly right", failed: "failed", unscored: "unscored",
    empty: "empty output"};
  var FLIPS = {flipped: "any change", worse: "right before, wrong now", better: "wrong before, right now",
    changed: "answer changed", same: "unchanged"};
  var D, rows, hay = null, pairs = {}, timer = null;
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function notice(text) { $("notice").textContent = text; }
  function decode(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }
  function side(r) { return D.mode === "compare" ? r.c : r; }
  function json(v) { return typeof v === "string" ? v : JSON.stringify(v); }
  function readState() {
    var p = new URLSearchParams(location.hash.slice(1)), st = {task: p.get("task") || "", status: p.get("status") || "",
      flip: p.get("flip") || "", q: p.get("q") || "", page: Math.max(1, parseInt(p.get("page") || "1", 10) || 1), f: {}};
    p.forEach(function (v, k) { if (k.indexOf("f.") === 0 && v) { st.f[k.slice(2)] = v; } });
    return st;
  }
  function writeState(st) {
    var p = new URLSearchParams();
    ["task", "status", "flip", "q"].forEach(function (k) { if (st[k]) { p.set(k, st[k]); } });
    Object.keys(st.f).forEach(function (k) { if (st.f[k]) { p.set("f." + k, st.f[k]); } });
    if (st.page > 1) { p.set("page", String(st.page)); }
    var h = p.toString();
    if (location.hash.slice(1) === h) { apply(); } else { location.hash = h; }
  }
  function fromControls() {
    var st = readState(), f = {};
    st.task = $("f-task").value; st.q = $("f-q").value.trim(); st.page = 1;
    if ($("f-flip")) { st.flip = $("f-flip").value; }
    Array.prototype.forEach.call(document.querySelectorAll("select.field"), function (s) {
      if (s.value && !s.hidden) { f[s.dataset.field] = s.value; }
    });
    st.f = f;
    return st;
  }
  function haystack(r) {
    var parts = [r.i, r.p, json(r.g)];
    (D.mode === "compare" ? [r.b, r.c] : [r]).forEach(function (x) { parts.push(x.o, json(x.a), x.p); });
    return parts.filter(function (x) { return x !== undefined && x !== null; }).join("\n").toLowerCase();
  }
  function match(r, st) {
    if (st.task && D.tasks[r.t].name !== st.task) { return false; }
    for (var k in st.f) { if (!r.m || r.m[k] !== st.f[k]) { return false; } }
    if (st.flip && (st.flip === "flipped" ? r.fl === "same" : r.fl !== st.flip)) { return false; }
    if (st.q) {
      if (!hay) { hay = rows.map(haystack); }
      if (hay[r.k].indexOf(st.q.toLowerCase()) < 0) { return false; }
    }
    return true;
  }
  function hasStatus(r, s) { var x = side(r); return s === "empty" ? x.e === 1 : x.s === s; }
  function syncControls(st) {
    $("f-task").value = st.task; $("f-q").value = st.q;
    if ($("f-flip")) { $("f-flip").value = st.flip; }
    Array.prototype.forEach.call(document.querySelectorAll("select.field"), function (s) {
      var t = st.task && D.tasks.filter(function (x) { return x.name === st.task; })[0];
      s.hidden = !!t && !(s.dataset.field in t.fields);
      s.value = st.f[s.dataset.field] || "";
    });
    Array.prototype.forEach.call($("statuses").querySelectorAll("button"), function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.status === st.status));
    });
  }
  function apply() {
    var t0 = performance.now(), st = readState(), counts = {all: 0}, list = [], seen = {};
    syncControls(st);
    STATUSES.forEach(function (s) { counts[s] = 0; });
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (!match(r, st)) { continue; }
      var x = side(r);
      counts.all++; counts[x.s]++;
      if (x.e === 1) { counts.empty++; }
      if (st.status && !hasStatus(r, st.status)) { continue; }
      if (D.tasks[r.t].pairs && r.pk !== undefined) {
        var key = r.t + "\u0000" + r.pk;
        if (seen[key]) { seen[key].n++; continue; }
        seen[key] = {n: 1};
      }
      list.push(r);
    }
    var shown = Object.keys(seen).reduce(function (a, k) { return a + seen[k].n - 1; }, list.length);
    Object.keys(counts).forEach(function (s) { $("count-" + s).textContent = String(counts[s]); });
    $("n-match").textContent = String(shown);
    $("n-cards").textContent = shown === list.length ? "" : " (" + list.length + " cards: pairs shown together)";
    var pages = Math.max(1, Math.ceil(list.length / PAGE)), page = Math.min(st.page, pages);
    var main = $("list");
    main.textContent = "";
    list.slice((page - 1) * PAGE, page * PAGE).forEach(function (r) { main.appendChild(card(r)); });
    if (!list.length) { main.appendChild(el("p", "note", "No sample matches these filters.")); }
    ["pager-top", "pager-bottom"].forEach(function (id) { pager($(id), page, pages, st); });
    document.body.dataset.page = String(page);
    document.body.dataset.applyMs = String(Math.round(performance.now() - t0));
  }
  function pager(nav, page, pages, st) {
    nav.textContent = "";
    function go(p, label) {
      var b = el("button", "", label);
      b.type = "button"; b.disabled = p < 1 || p > pages || p === page;
      b.addEventListener("click", function () { st.page = p; writeState(st); window.scrollTo(0, 0); });
      nav.appendChild(b);
    }
    go(1, "\u00ab first"); go(page - 1, "\u2039 previous");
    nav.appendChild(el("span", "", "page " + page + " of " + pages));
    go(page + 1, "next \u203a"); go(pages, "last \u00bb");
  }
  function fmt(v) { return typeof v === "number" ? String(Math.round(v * 10000) / 10000) : "\u2013"; }
  function isBox(v) { return Array.isArray(v) && v.length === 4 && v.every(function (x) { return typeof x === "number"; }); }
  function answer(v, r) {
    var opts = r.md && r.md.options;
    if (Array.isArray(opts) && typeof v === "number" && opts[v] !== undefined) {
      return "(" + String.fromCharCode(97 + v) + ") " + opts[v];
    }
    if (v === null || v === undefined) { return "\u2013"; }
    return isBox(v) ? "[" + v.map(fmt).join(", ") + "]" : json(v);
  }
  function target(v, r) {
    if (!Array.isArray(v) || !v.length || !v.every(function (x) { return typeof x === "string"; })) {
      return el("span", "", answer(v, r));
    }
    var n = {}, order = [];
    v.forEach(function (x) { if (!(x in n)) { n[x] = 0; order.push(x); } n[x]++; });
    var ul = el("ul", "refs");
    order.forEach(function (x) { ul.appendChild(el("li", "", n[x] > 1 ? x + "  (\u00d7" + n[x] + ")" : x)); });
    return ul;
  }
  function row(dl, label, content, cls) {
    dl.appendChild(el("dt", "", label));
    var dd = el("dd", cls || "");
    if (content instanceof Node) { dd.appendChild(content); } else { dd.appendChild(el("pre", "", content)); }
    dl.appendChild(dd);
  }
  function scores(x) {
    var sc = x.sc || {};
    return Object.keys(sc).map(function (k) { return k + " " + fmt(sc[k]); }).join("  ") || "\u2013";
  }
  function outcome(dl, x, r, suffix) {
    row(dl, "output" + suffix, x.o === null || x.o === undefined ? "(none)" : x.o);
    row(dl, "parsed" + suffix, answer(x.a, r));
    row(dl, "scores" + suffix, scores(x) + (x.pv !== undefined ? "  \u00b7 pair " +
      (x.pv === null ? "left out" : x.pv === 1 ? "counts (all right)" : "does not count") : ""));
    if (x.e === 1) { row(dl, "note" + suffix, "empty output"); }
    if (x.er) { row(dl, "error" + suffix, x.er[0] + ": " + x.er[1], "err"); }
    if (x.j) {
      var j = x.j, s = Array.isArray(j.scores) ? "reference " + j.scores[0] + " / model " + j.scores[1] : "";
      row(dl, "judge" + suffix, [j.status, j.model, s, j.error].filter(Boolean).join(" \u00b7 ") +
        (j.raw ? "\n" + j.raw : ""));
    }
    if (x.h) { row(dl, "human grade" + suffix, x.h); }
  }
  function media(r, t) {
    var box = document.createElement("div"), ims = r.im || [];
    var px = r.wh && Math.max(r.wh[0], r.wh[1]) <= 128 ? "px" : "";  /* tiny images: sharp pixels */
    box.className = "media";
    var preds = D.mode === "compare" ? [[r.c.a, "box-pred"], [r.b.a, "box-base"]] : [[r.a, "box-pred"]];
    if (t.box && r.wh && (isBox(r.g) || preds.some(function (p) { return isBox(p[0]); }))) {
      var w = r.wh[0], h = r.wh[1], svg = svgEl("svg", {viewBox: "0 0 " + w + " " + h, "class": "boxes"});
      svg.appendChild(svgEl("rect", {x: 0, y: 0, width: w, height: h, "class": "canvas"}));
      if (ims.length) {
        svg.appendChild(svgEl("image", {href: "data:image/jpeg;base64," + D.images[ims[0]], x: 0, y: 0, width: w,
          height: h, preserveAspectRatio: "none"}));
      }
      [[r.g, "box-target"]].concat(preds).forEach(function (p) {
        var v = p[0];
        if (isBox(v)) {
          svg.appendChild(svgEl("rect", {x: v[0], y: v[1], width: Math.max(0, v[2] - v[0]),
            height: Math.max(0, v[3] - v[1]), "class": p[1]}));
        }
      });
      box.appendChild(svg);
      var lg = el("div", "legend");
      lg.appendChild(el("span", "lg-t", "\u25a0 target"));
      lg.appendChild(el("span", "lg-p", D.mode === "compare" ? "\u25a0 candidate" : "\u25a0 predicted"));
      if (D.mode === "compare") { lg.appendChild(el("span", "lg-b", "\u25a0 baseline")); }
      box.appendChild(lg);
      if (!ims.length) { box.appendChild(el("div", "noimg", "no image (see the task's note)")); }
      return box;
    }
    ims.forEach(function (k) {
      var img = document.createElement("img");
      img.alt = "sample image"; img.className = px; img.src = "data:image/jpeg;base64," + D.images[k];
      box.appendChild(img);
    });
    if (!ims.length) { box.appendChild(el("div", "noimg", "no image" + (t.note ? ": " + t.note : ""))); }
    return box;
  }
  function panel(r, t) {
    var wrap = el("div", "sample"), fields = el("div", "fields"), dl = el("dl");
    wrap.appendChild(media(r, t));
    row(dl, "prompt", r.p === null || r.p === undefined ? "(none)" : r.p);
    row(dl, "target", target(r.g, r));
    if (D.mode === "compare") {
      var two = el("div", "two");
      [["baseline", r.b], ["candidate", r.c]].forEach(function (s) {
        var d = el("div"), inner = el("dl");
        d.appendChild(el("h4", "", s[0] + ": " + LABELS[s[1].s]));
        if (s[1].p !== undefined) { row(inner, "prompt", s[1].p); }
        outcome(inner, s[1], r, "");
        d.appendChild(inner); two.appendChild(d);
      });
      fields.appendChild(dl); fields.appendChild(two);
    } else {
      outcome(dl, r, r, ""); fields.appendChild(dl);
    }
    var det = el("details"), keys = Object.keys(r.md || {});
    if (keys.length) {
      det.appendChild(el("summary", "", "metadata"));
      det.appendChild(el("pre", "", JSON.stringify(r.md, null, 1)));
      fields.appendChild(det);
    }
    wrap.appendChild(fields);
    return wrap;
  }
  function card(r) {
    var t = D.tasks[r.t], x = side(r), art = el("article", "card st-" + x.s), head = el("div", "chead");
    art.setAttribute("data-task", t.name); art.setAttribute("data-id", r.i); art.setAttribute("data-status", x.s);
    var members = t.pairs && r.pk !== undefined ? pairs[r.t + "\u0000" + r.pk] : [r];
    head.appendChild(el("span", "id", members.length > 1 ? "pair " + r.pk : r.i));
    head.appendChild(el("span", "task", t.name));
    head.appendChild(el("span", "badge b-" + x.s, LABELS[x.s]));
    if (D.mode === "compare" && r.fl !== "same") {
      art.setAttribute("data-flip", r.fl);
      head.appendChild(el("span", "badge b-" + r.fl, FLIPS[r.fl]));
    }
    art.appendChild(head);
    if (members.length > 1) {
      var grid = el("div", "pairrow");
      members.forEach(function (m) {
        var cell = el("div");
        cell.appendChild(el("div", "chead", m.i + " \u00b7 " + LABELS[side(m).s]));
        cell.appendChild(panel(m, t)); grid.appendChild(cell);
      });
      art.appendChild(grid);
    } else {
      art.appendChild(panel(r, t));
    }
    return art;
  }
  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = value; o.textContent = label; select.appendChild(o);
  }
  function setup() {
    var task = $("f-task"), st = $("statuses"), fieldsBox = $("fields"), union = {};
    option(task, "", "all tasks (" + rows.length + ")");
    D.tasks.forEach(function (t) {
      option(task, t.name, t.name + " (" + t.n + ")");
      Object.keys(t.fields).forEach(function (k) {
        union[k] = union[k] || {};
        t.fields[k].forEach(function (v) { union[k][v] = 1; });
      });
    });
    ["all"].concat(STATUSES).forEach(function (s) {
      var b = el("button", "", (s === "all" ? "all" : LABELS[s]) + " ");
      b.type = "button"; b.dataset.status = s === "all" ? "" : s;
      b.appendChild(el("b", "", "0")).id = "count-" + s;
      b.addEventListener("click", function () { var x = fromControls(); x.status = b.dataset.status; writeState(x); });
      st.appendChild(b);
    });
    Object.keys(union).sort().forEach(function (k) {
      var s = el("select", "field");
      s.dataset.field = k; s.setAttribute("aria-label", k);
      option(s, "", k + ": any");
      Object.keys(union[k]).sort().forEach(function (v) { option(s, v, k + ": " + v); });
      s.addEventListener("change", function () { writeState(fromControls()); });
      fieldsBox.appendChild(s);
    });
    if (D.mode === "compare") {
      var f = el("select"); f.id = "f-flip"; f.setAttribute("aria-label", "flips");
      option(f, "", "all samples");
      Object.keys(FLIPS).forEach(function (k) { option(f, k, FLIPS[k]); });
      f.addEventListener("change", function () { writeState(fromControls()); });
      fieldsBox.appendChild(f);
    }
    task.addEventListener("change", function () { writeState(fromControls()); });
    $("f-q").addEventListener("input", function () {
      clearTimeout(timer); timer = setTimeout(function () { writeState(fromControls()); }, 250);
    });
    rows.forEach(function (r, k) {
      r.k = k;
      if (D.tasks[r.t].pairs && r.pk !== undefined) { (pairs[r.t + "\u0000" + r.pk] = pairs[r.t + "\u0000" + r.pk] || []).push(r); }
    });
    window.addEventListener("hashchange", apply);
  }
  var source = $("evalkit-data");
  if (typeof DecompressionStream === "undefined") {
    notice("This browser cannot read the page's data (it needs DecompressionStream: Chrome 80+, Firefox 113+, Safari 16.4+).");
    return;
  }
  var t0 = performance.now();
  decode(source.textContent.trim()).then(function (text) {
    var t1 = performance.now();
    D = JSON.parse(text); rows = D.rows;
    var t2 = performance.now();
    setup(); apply();
    document.body.dataset.decodeMs = String(Math.round(t1 - t0));
    document.body.dataset.parseMs = String(Math.round(t2 - t1));
    document.body.dataset.renderMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "1";
  }).catch(function (e) { notice("The page's data could not be read: " + e); });
})();
""".replace("__PAGE__", str(PAGE_SIZE))


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON, and so the page's JSON.parse, has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def encode_data(data: dict[str, Any]) -> str:
    """The page's data block: gzipped compact JSON in base64 (nothing in it can end the <script> element)."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN score somewhere: shown as missing
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    raw = text.encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(raw)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_data(block: str) -> dict[str, Any]:
    """The inverse of :func:`encode_data` (tests and scripts read pages back with it)."""
    return json.loads(gzip.decompress(base64.b64decode(block)).decode("utf-8"))


def _run_line(label: str, side: RunSide) -> str:
    d = side.describe()
    return (f"<p class='meta'><b>{escape(label)}</b> {escape(str(d['model']))} · {escape(str(d['checkpoint']))} · "
            f"{escape(str(d['backend']))} · run {escape(str(d['run_id']))} ({escape(str(d['status']))}) · "
            f"{escape(str(d['path']))}</p>")


def _task_table(side: RunSide, page: PageData) -> str:
    notes = {t.name: t.image_note for t in page.tasks}
    head = ("<tr><th>task</th><th>primary metric</th><th>value ± stderr</th><th>other metrics</th><th>n</th>"
            "<th>failed</th><th>empty</th><th>dataset</th><th>images</th></tr>")
    rows = []
    for name, t in side.record.tasks.items():
        others = ", ".join(f"{k} {score_text(v)}" for k, v in t.metrics.items() if k != t.primary_metric)
        failed = ", ".join(f"{k} {v}" for k, v in t.errors_by_category.items())
        ds = t.dataset
        cells = (name, t.primary_metric, score_text(t.metrics.get(t.primary_metric)), others or "-", t.n,
                 f"{t.n_errors}" + (f" ({failed})" if failed else ""), t.n_empty,
                 f"{ds.id} [{ds.split}] {ds.content_hash or ''}", notes.get(name) or "shown")
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table class='sum'>{head}{''.join(rows)}</table>"


def _compare_text(cmp: Comparison) -> str:
    """Exactly what ``evalkit compare`` prints for this comparison, as plain text."""
    from rich.console import Console

    from evalkit.commands.compare import print_comparison

    console = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    print_comparison(cmp, console=console)
    return console.export_text()


def _header(page: PageData, side: RunSide | None, cmp: Comparison | None) -> tuple[str, str]:
    """(title, header markup), everything escaped."""
    if cmp is not None:
        b, c = cmp.baseline.record.model.name, cmp.candidate.record.model.name
        notes = "".join(f"<p class='note'>{escape(t.name)}: {escape(t.image_note)}</p>" for t in page.tasks
                        if t.image_note)
        return (f"evalkit view: {b} vs {c}",
                f"<h1>evalkit view: {escape(b)} vs {escape(c)}</h1>{_run_line('baseline', cmp.baseline)}"
                f"{_run_line('candidate', cmp.candidate)}<details open><summary>paired tests "
                f"(<code>evalkit compare</code>)</summary><pre class='cmp'>{escape(_compare_text(cmp))}</pre>"
                f"</details>{notes}<p class='meta'>Samples both runs scored; flips first. Status filters apply "
                "to the candidate.</p>")
    assert side is not None
    name = side.record.model.name
    return (f"evalkit view: {name}",
            f"<h1>evalkit view: {escape(name)}</h1>{_run_line('run', side)}{_task_table(side, page)}")


def render_page(page: PageData, side: RunSide | None = None, cmp: Comparison | None = None) -> str:
    """The whole page as a string (write it with UTF-8): one run (``side``) or a comparison (``cmp``)."""
    title, header = _header(page, side, cmp)
    csp = (f"default-src 'none'; img-src data:; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
           "base-uri 'none'; form-action 'none'")
    n = sum(len(t.rows) for t in page.tasks)
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{escape(csp, quote=True)}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{header}"
        "<div id='controls'><select id='f-task' aria-label='task'></select><span id='statuses'></span>"
        "<span id='fields'></span><input id='f-q' type='search' placeholder='search questions and outputs' "
        "aria-label='search'><span id='summary'><b id='n-match'>0</b> of "
        f"{n} samples<span id='n-cards'></span></span></div>"
        "<p id='notice'></p><noscript><p>This page needs JavaScript to show the samples.</p></noscript>"
        "<nav class='pager' id='pager-top'></nav><main id='list'></main><nav class='pager' id='pager-bottom'></nav>"
        f"<script id='evalkit-data' type='application/octet-stream'>{encode_data(page.to_json())}</script>"
        f"<script>{_JS}</script></body></html>\n"
    )
