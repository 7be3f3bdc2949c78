"""`evalkit view`: the page's data (rows, statuses, breakdown fields, thumbnails from the run's dataset), the
comparison page, the leaderboard's link, and the page in a real headless Chromium: filters and counts, grounding
boxes, pairs, flips first, and script payloads staying inert.

Chromium is driven with test_leaderboard_browser.py's helpers (--dump-dom, filters through the URL hash); the page
decodes its data asynchronously, so --virtual-time-budget lets that finish before the DOM is dumped. The
browser tests are skipped only when no Chromium is installed (`make browser`).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from result_factory import TaskSpec, make_run
from test_leaderboard_browser import CHROMIUM, Dom as LeaderboardDom, chromium as leaderboard_chromium

from evalkit.cli import main
from evalkit.commands.viewer_html import decode_data
from evalkit.core.results import read_run, read_samples, write_run

browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
PAYLOADS = ["<script>document.body.dataset.pwned='script'</script>",
            "<img src=x onerror=\"document.body.dataset.pwned='img'\">",
            "</script><script>document.body.dataset.pwned='close'</script>",
            "<svg onload=\"document.body.dataset.pwned='svg'\"></svg>"]
FIELD_PAYLOAD = "<script>document.body.dataset.pwned=1</script>"  # short enough to be a breakdown value
EVIL_TASK = "<img src=x onerror=\"document.body.dataset.pwned='task'\">"  # a file name: no slash


# -- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "--model", "reference", "--tasks", "shapes", "--limit", "8", "--output", str(out),
                 "--no-progress"]) == 0
    return next(p for p in out.iterdir() if (p / "run.json").is_file())


def _break(src: Path, dst: Path, ids: list[str], output: str = " purple") -> Path:
    """A copy of a run whose shapes_vqa samples ``ids`` answer ``output``, scored and aggregated as a run would."""
    from evalkit.tasks import get_task
    from evalkit.tasks.base import ParseContext

    shutil.copytree(src, dst)
    task = get_task("shapes_vqa")
    records = read_samples(dst, "shapes_vqa")
    for rec in records:
        if rec.id in ids:
            rec.output = output
            rec.parsed = task.parse(output.strip(), rec.metadata, ParseContext())
            rec.scores = task.score(rec)
    (dst / "samples" / "shapes_vqa.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    record = read_run(dst)
    record.tasks["shapes_vqa"].metrics = task.aggregate(records)
    record.run_id = dst.name
    write_run(dst, record)
    return dst


@pytest.fixture(scope="module")
def broken(shapes_run: Path) -> list[str]:
    """Two shapes_vqa samples the reference model answers right and the candidate wrongly (stored order)."""
    return [r.id for r in read_samples(shapes_run, "shapes_vqa") if r.scores["accuracy"] == 1.0][:2]


@pytest.fixture(scope="module")
def candidate(shapes_run: Path, broken: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _break(shapes_run, tmp_path_factory.mktemp("cand") / "candidate", broken)


@pytest.fixture(scope="module")
def shapes_page(shapes_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "view.html"
    assert main(["view", str(shapes_run), "--html", str(out)]) == 0
    return out


def _evil_run(root: Path, run_id: str, outputs: list[str]) -> Path:
    """A run whose model name, task name, prompts, outputs, targets and metadata carry script payloads."""
    run = make_run(root, run_id, {EVIL_TASK: TaskSpec([1.0, 0.0, 1.0, 0.0], outputs=outputs)}, model=PAYLOADS[0],
                   checkpoint=PAYLOADS[1])
    file = run / "samples" / f"{EVIL_TASK}.jsonl"
    records = read_samples(run, EVIL_TASK)
    for i, rec in enumerate(records):
        rec.prompt = f"USER: {PAYLOADS[(i + 1) % 4]} ASSISTANT:"
        rec.target = [PAYLOADS[(i + 2) % 4]]
        rec.metadata = {"kind": [FIELD_PAYLOAD, "plain"][i % 2], "note": PAYLOADS[3]}
    file.write_text("".join(r.model_dump_json() + "\n" for r in records))
    return run


def page_data(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    start = text.index("<script id='evalkit-data' type='application/octet-stream'>")
    block = text[text.index(">", start) + 1:text.index("</script>", start)]
    return decode_data(block)


# -- the page's data ----------------------------------------------------------------------------------

def test_every_sample_is_a_row_with_its_status_fields_and_image(shapes_run: Path, shapes_page: Path) -> None:
    data = page_data(shapes_page)
    names = [t["name"] for t in data["tasks"]]
    assert names == ["shapes_vqa", "shapes_caption", "shapes_grounding", "shapes_pairs"]
    for k, name in enumerate(names):
        records = {r.id: r for r in read_samples(shapes_run, name)}
        rows = [r for r in data["rows"] if r["t"] == k]
        assert sorted(r["i"] for r in rows) == sorted(records)
        for row in rows:
            rec = records[row["i"]]
            assert (row["p"], row["o"], row["a"], row["g"], row["sc"]) == (rec.prompt, rec.output, rec.parsed,
                                                                          rec.target, rec.scores)
            metric = data["tasks"][k]["metric"]
            expected = "unscored" if metric is None else {1.0: "right", 0.0: "wrong"}.get(rec.scores[metric], "partly")
            assert row["s"] == expected
            assert len(row["im"]) == 1  # 32 samples, all under the default cap
    tasks = {t["name"]: t for t in data["tasks"]}
    assert tasks["shapes_vqa"]["fields"].keys() >= {"answer_type", "qtype"}
    assert tasks["shapes_caption"]["metric"] is None  # CIDEr is a corpus metric: captions are unscored
    assert tasks["shapes_grounding"]["box"] and tasks["shapes_pairs"]["pairs"]
    assert all(t["note"] is None for t in data["tasks"])
    jpeg = base64.b64decode(data["images"][0])
    assert jpeg[:3] == b"\xff\xd8\xff"
    pairs = [r for r in data["rows"] if r["t"] == 3]
    assert all(r["pv"] in (0.0, 1.0) and r["pk"] for r in pairs)


def test_breakdown_fields_are_the_keys_that_group_samples() -> None:
    from evalkit.commands.viewer_data import breakdown_fields
    from evalkit.core.results import SampleRecord

    def rec(i: int) -> SampleRecord:
        return SampleRecord(id=str(i), task="t", prompt="p", output="o", metadata={
            "answer_type": ["yes/no", "number", "other"][i % 3], "turn": 1 + i % 2, "width": 640 + i,
            "uid": f"u{i}", "same": "x", "sentence": f"{'a long question about the picture ' * 2}{i % 2}",
            "scores": [i], "ratio": i / 10})

    assert breakdown_fields([rec(i) for i in range(12)]) == {"answer_type": ["number", "other", "yes/no"],
                                                            "turn": ["1", "2"]}


def test_thumbnails_are_capped_wrong_first(candidate: Path, tmp_path: Path) -> None:
    wrong = [r.id for r in read_samples(candidate, "shapes_vqa") if r.scores["accuracy"] == 0.0]
    out = tmp_path / "v.html"
    assert main(["view", str(candidate), "--html", str(out), "--max-images", str(len(wrong))]) == 0
    with_image = [r for r in page_data(out)["rows"] if r.get("im")]
    assert sorted(r["i"] for r in with_image) == sorted(wrong)
    assert main(["view", str(candidate), "--html", str(out), "--max-images", "0"]) == 0
    data = page_data(out)
    assert not data["images"] and all("--max-images 0" in t["note"] for t in data["tasks"])


def test_changed_dataset_renders_without_images_and_says_why(shapes_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(shapes_run, run)
    record = read_run(run)
    record.tasks["shapes_vqa"].dataset.content_hash = "0000000000000000"
    write_run(run, record)
    assert main(["view", str(run)]) == 0
    data = page_data(run / "view.html")
    note = data["tasks"][0]["note"]
    assert "content hash" in note and "0000000000000000" in note
    assert not any(r.get("im") for r in data["rows"] if r["t"] == 0)
    assert all(r.get("im") for r in data["rows"] if r["t"] == 1)
    assert "0000000000000000" in (run / "view.html").read_text()  # the reason is in the page's header too


def test_hub_dataset_images_and_missing_data(vqav2_dir: Path, tmp_path: Path) -> None:
    from evalkit.tasks import get_task
    from evalkit.tasks.base import TaskContext

    data = get_task("vqav2_val").load(TaskContext(data_dir=vqav2_dir))
    samples = list(data.samples)
    run = make_run(tmp_path, "hub", {"vqav2_val": TaskSpec([1.0] * len(samples),
                                                          content_hash=data.dataset.content_hash)})
    records = read_samples(run, "vqav2_val")
    for rec, sample in zip(records, samples):
        rec.id = sample.id
    (run / "samples" / "vqav2_val.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    out = tmp_path / "hub.html"
    assert main(["view", str(run), "--data-dir", str(vqav2_dir), "--html", str(out)]) == 0
    rows = page_data(out)["rows"]
    decodable = [s.id for s in samples if _decodes(s)]
    assert 0 < len(decodable) < len(samples)  # the fixture holds corrupt images: those rows have none
    assert sorted(r["i"] for r in rows if r.get("im")) == sorted(decodable)
    assert main(["view", str(run), "--html", str(out)]) == 0  # no --data-dir, none recorded, hub offline
    note = page_data(out)["tasks"][0]["note"]
    assert note.startswith("images not shown: the data could not be opened") and "lmms-lab/VQAv2" in note


def _decodes(sample: object) -> bool:
    from evalkit.core.types import SampleError

    try:
        sample.images[0].load()  # type: ignore[attr-defined]
        return True
    except SampleError:
        return False


def test_judge_verdicts_and_human_grades_are_shown(tmp_path: Path) -> None:
    judge = {"status": "judged", "model": "gpt-4o", "raw": "8 6\nAssistant 2 misses the sign.", "scores": [8, 6]}
    run = make_run(tmp_path, "owl", {"owleval": TaskSpec([0.6, None], metric="model_score",
                                                         metadata=[{"judge": judge, "turn": 1}, {"turn": 2}])})
    (run / "ratings").mkdir()
    (run / "ratings" / "owleval.json").write_text(json.dumps({"grades": {"q0": "B"}}))
    assert main(["view", str(run)]) == 0
    data = page_data(run / "view.html")
    first, second = data["rows"]
    assert (first["j"], first["h"], first["s"], first["md"]) == (judge, "B", "partly", {"turn": 1})
    assert second["s"] == "failed" and second["er"] == ["generation", "boom"] and "h" not in second
    assert data["tasks"][0]["note"].startswith("images not shown")  # no OwlEval folder here


def test_cli_usage_errors(shapes_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(shapes_run), str(shapes_run), str(shapes_run)]) == 2
    assert main(["view", str(shapes_run), "--max-images", "-1"]) == 2
    assert main(["view", str(shapes_run), "--data-dir", "/no/such/folder"]) == 2
    assert main(["view", "/no/such/run"]) == 2
    capsys.readouterr()
    assert main(["view", str(shapes_run)]) == 0
    assert capsys.readouterr().out.strip() == str(shapes_run / "view.html")


def test_compare_page_puts_flips_first(shapes_run: Path, candidate: Path, broken: list[str], tmp_path: Path) -> None:
    out = tmp_path / "cmp.html"
    assert main(["compare", str(shapes_run), str(candidate), "--html", str(out)]) == 0
    data = page_data(out)
    assert data["mode"] == "compare"
    assert [(r["i"], r["fl"]) for r in data["rows"][:2]] == [(i, "worse") for i in broken]
    assert all(r["fl"] == "same" for r in data["rows"][2:])
    first = data["rows"][0]
    assert (first["b"]["s"], first["c"]["s"], first["c"]["o"]) == ("right", "wrong", " purple")
    text = out.read_text()
    assert "McNemar" in text and "shapes_vqa" in text  # compare's own printout of the paired tests
    default = candidate / f"view-vs-{read_run(shapes_run).run_id}.html"
    assert main(["view", str(shapes_run), str(candidate)]) == 0 and default.is_file()


def test_view_shows_runs_over_changed_data_with_compare_note(shapes_run: Path, candidate: Path,
                                                             tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(candidate, changed, ignore=shutil.ignore_patterns("*.html"))
    record = read_run(changed)
    record.tasks["shapes_vqa"].dataset.content_hash = "ffffffffffffffff"
    write_run(changed, record)
    assert main(["compare", str(shapes_run), str(changed)]) == 2  # compare refuses ...
    out = tmp_path / "v.html"
    assert main(["view", str(shapes_run), str(changed), "--html", str(out)]) == 0  # ... the viewer shows and says
    assert "dataset content differs" in out.read_text() and "ffffffffffffffff" in page_data(out)["tasks"][0]["note"]


def test_leaderboard_links_a_run_to_its_page(shapes_run: Path, candidate: Path, tmp_path: Path) -> None:
    from evalkit.commands.leaderboard import build_leaderboard
    from evalkit.commands.leaderboard_html import render_html

    root = tmp_path / "results"
    for run in (shapes_run, candidate):
        shutil.copytree(run, root / run.name, ignore=shutil.ignore_patterns("*.html"))
    (root / candidate.name / "view.html").write_text("page")
    page = render_html(build_leaderboard(root))
    assert page.count("class='view'") == 1
    assert (root / candidate.name / "view.html").resolve().as_uri() in page


def test_leaderboard_page_links_the_viewer_relative_to_itself(candidate: Path, tmp_path: Path) -> None:
    """`leaderboard --html site/index.html`: the link is relative, so a published folder keeps working when moved."""
    root = tmp_path / "results"
    shutil.copytree(candidate, root / candidate.name, ignore=shutil.ignore_patterns("*.html"))
    (root / candidate.name / "view.html").write_text("page")
    site = tmp_path / "site" / "index.html"
    assert main(["leaderboard", str(root), "--html", str(site)]) == 0
    page = site.read_text()
    assert f"href='../results/{candidate.name}/view.html'" in page and "file://" not in page


def test_payloads_are_escaped_in_the_markup(tmp_path: Path) -> None:
    run = _evil_run(tmp_path, "evil", PAYLOADS)
    assert main(["view", str(run)]) == 0
    text = (run / "view.html").read_text()
    assert text.count("<script") == 2 and "onerror=" not in text.replace("onerror=&quot;", "")
    assert "&lt;script&gt;document.body.dataset.pwned=&#x27;script&#x27;&lt;/script&gt;" in text


# -- in a browser -------------------------------------------------------------------------------------

class Dom(LeaderboardDom):
    """The leaderboard test's reader (body attributes, script count) plus what these tests read back: texts of
    the elements with an id, cards, SVG boxes, sample panels, all text."""

    def __init__(self, text: str) -> None:
        self.ids: dict[str, str] = {}
        self.cards: list[dict[str, str | None]] = []
        self.rects: list[dict[str, str | None]] = []
        self.panels = 0
        self.text = ""
        self._open: list[str] = []
        super().__init__(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        super().handle_starttag(tag, attrs)
        a = dict(attrs)
        if tag == "article":
            self.cards.append(a)
        elif tag == "rect" and (a.get("class") or "").startswith("box-"):
            self.rects.append({**a, "card": self.cards[-1].get("data-id")})
        elif tag == "div" and a.get("class") == "sample":
            self.panels += 1
        elif tag in ("b", "span", "p") and a.get("id"):
            self._open.append(a["id"])
            self.ids[a["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("b", "span", "p"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._open:
            self.ids[self._open[-1]] += data


def chromium(tmp_path: Path, url: str) -> Dom:
    """The page's DOM once its data is decoded and the first page rendered (virtual time lets that finish)."""
    dom = Dom(leaderboard_chromium(tmp_path, url, "--virtual-time-budget=20000", "--dump-dom"))
    assert dom.body.get("data-ready") == "1", dom.ids.get("notice")
    return dom


@browser
def test_filters_update_the_counts(shapes_run: Path, shapes_page: Path, tmp_path: Path) -> None:
    vqa = read_samples(shapes_run, "shapes_vqa")
    right = [r.id for r in vqa if r.scores["accuracy"] == 1.0]
    dom = chromium(tmp_path, shapes_page.as_uri())
    assert dom.ids["n-match"] == "32" and dom.ids["count-unscored"] == "8"  # 4 tasks x 8; captions unscored
    dom = chromium(tmp_path, shapes_page.as_uri() + "#task=shapes_vqa&status=right")
    assert dom.ids["n-match"] == str(len(right)) and dom.ids["count-all"] == "8"
    assert [c["data-id"] for c in dom.cards] == right
    qtype = str(vqa[0].metadata["qtype"])
    expected = [r.id for r in vqa if r.metadata["qtype"] == qtype]
    dom = chromium(tmp_path, shapes_page.as_uri() + f"#task=shapes_vqa&f.qtype={qtype}")
    assert [c["data-id"] for c in dom.cards] == expected and dom.ids["n-match"] == str(len(expected))
    word = str(vqa[1].metadata["question_raw"]).split()[-1].rstrip("?")
    dom = chromium(tmp_path, shapes_page.as_uri() + f"#q={word}&task=shapes_vqa")
    assert vqa[1].id in [c["data-id"] for c in dom.cards]
    assert all(word.lower() in r.prompt.lower() or word.lower() in (r.output or "").lower()
               for r in vqa if r.id in [c["data-id"] for c in dom.cards])


@browser
def test_grounding_boxes_and_pairs_are_drawn(shapes_run: Path, shapes_page: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, shapes_page.as_uri() + "#task=shapes_grounding")
    records = {r.id: r for r in read_samples(shapes_run, "shapes_grounding")}
    assert len(dom.cards) == 8
    for card in dom.cards:
        rec = records[card["data-id"]]
        boxes = {r["class"]: r for r in dom.rects if r["card"] == card["data-id"]}
        for cls, box in (("box-target", rec.target), ("box-pred", rec.parsed)):
            drawn = boxes[cls]
            x1, y1, x2, y2 = box  # type: ignore[misc]
            assert float(drawn["x"]) == pytest.approx(x1) and float(drawn["y"]) == pytest.approx(y1)
            assert float(drawn["width"]) == pytest.approx(x2 - x1)
            assert float(drawn["height"]) == pytest.approx(y2 - y1)
    assert "iou" in dom.text
    dom = chromium(tmp_path, shapes_page.as_uri() + "#task=shapes_pairs")
    assert len(dom.cards) == 4 and dom.panels == 8 and dom.ids["n-match"] == "8"  # 4 pairs, side by side
    assert "pair counts (all right)" in dom.text


@browser
def test_comparison_in_the_browser(shapes_run: Path, candidate: Path, broken: list[str], tmp_path: Path) -> None:
    out = tmp_path / "cmp.html"
    assert main(["view", str(shapes_run), str(candidate), "--html", str(out)]) == 0
    dom = chromium(tmp_path, out.as_uri())
    assert [c.get("data-flip") for c in dom.cards[:3]] == ["worse", "worse", None]
    dom = chromium(tmp_path, out.as_uri() + "#flip=worse")
    assert [c["data-id"] for c in dom.cards] == broken and dom.ids["n-match"] == "2"
    wrong = [r.id for r in read_samples(candidate, "shapes_vqa") if r.scores["accuracy"] == 0.0]
    dom = chromium(tmp_path, out.as_uri() + "#task=shapes_vqa&status=wrong")
    assert [c["data-id"] for c in dom.cards] == broken + [i for i in wrong if i not in broken]
    assert dom.ids["count-right"] == str(8 - len(wrong)) and dom.ids["n-match"] == str(len(wrong))
    assert "right before, wrong now" in dom.text


@browser
@pytest.mark.parametrize("hash_", ["", "#q=%3Cscript&status=wrong", "#f.kind=" + FIELD_PAYLOAD])
def test_script_payloads_stay_inert(tmp_path: Path, hash_: str) -> None:
    base = _evil_run(tmp_path, "evil-base", ["ok"] * 4)
    cand = _evil_run(tmp_path, "evil-cand", PAYLOADS)
    single = tmp_path / "single.html"
    both = tmp_path / "both.html"
    assert main(["view", str(cand), "--html", str(single)]) == 0
    assert main(["view", str(base), str(cand), "--html", str(both)]) == 0
    for page in (single, both):
        dom = chromium(tmp_path, page.as_uri() + hash_)
        assert "data-pwned" not in dom.body  # no payload ran: not as script, handler, or closing tag
        assert dom.scripts == 2  # the data block and the page's own script
        assert dom.cards and int(dom.ids["n-match"]) == len(dom.cards)
        assert PAYLOADS[0] in dom.text and EVIL_TASK in dom.text  # shown as text


def test_non_finite_numbers_become_null() -> None:
    from evalkit.commands.viewer_html import encode_data

    data = {"rows": [{"sc": {"iou": float("nan"), "x": float("inf"), "ok": 0.5}, "a": [1.0, float("-inf")]}]}
    assert decode_data(encode_data(data)) == {"rows": [{"sc": {"iou": None, "x": None, "ok": 0.5}, "a": [1.0, None]}]}


def test_render_page_size_and_json_are_compact(shapes_page: Path) -> None:
    text = shapes_page.read_text()
    assert "Content-Security-Policy" in text and "img-src data:" in text
    assert len(text) < 200_000
    assert json.loads(json.dumps(page_data(shapes_page)))  # plain JSON all the way down
