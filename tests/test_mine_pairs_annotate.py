"""`evalkit annotate-pairs`: the sheet, its validation and import, and `evalkit run` on the written benchmark."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.mining.annotations import Annotation, parse_row, read_annotations
from evalkit.testing.tiny_mining import build_clip_vision, build_dinov2, write_planted_images


@pytest.fixture(scope="module")
def mined_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mine")
    planted = write_planted_images(root / "images", pairs=3, decoys=1, unrelated=2)
    clip, dino = build_clip_vision(root / "clip"), build_dinov2(root / "dinov2")
    out = root / "out"
    assert main(["mine-pairs", str(planted.folder), "--out", str(out), "--clip", str(clip), "--ssl", str(dino)]) == 0
    return out


@pytest.fixture
def mined(mined_once: Path, tmp_path: Path) -> Path:
    """A fresh copy per test (imports change it)."""
    out = tmp_path / "mined"
    shutil.copytree(mined_once, out)
    return out


def sheet(mined: Path) -> list[dict[str, str]]:
    assert main(["annotate-pairs", str(mined)]) == 0
    with open(mined / "annotations.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def fill(row: dict[str, str], k: int, statements: bool = True) -> dict[str, str]:
    row.update(question=f"Are the sides of picture {k} light or dark?", option_a="Light", option_b="Dark",
               answer_1="a", answer_2="(b)")
    if statements:
        row.update(statement_1="The sides are light", statement_2="The sides are dark", type="Color")
    return row


def questions(mined: Path, kind: str = "MMVP") -> list[dict[str, str]]:
    with open(mined / "MMVP" / kind / "Questions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# --- validation of one row ----------------------------------------------------------------------------------

GOOD = dict(question="Is it open?", option_a="Open", option_b="Closed", answer_1="b", answer_2="a")


@pytest.mark.parametrize("change, message", [
    (dict(option_b=""), "option_b missing"),
    (dict(answer_2="b"), "both images have the answer (b)"),
    (dict(option_b="open"), "the two options are the same"),
    (dict(option_a="Open (b) wide"), "must not itself contain"),
    (dict(option_b="Shut (c) tight"), "must not itself contain"),
    (dict(answer_1="c"), "answer_1 'c' is not a or b"),
    (dict(statement_1="It is open"), "one statement written"),
    (dict(statement_1="It is closed", statement_2="It is open"), "statements need a type"),
    (dict(statement_1="x", statement_2="y", type="../up"), "must not contain slashes"),
    (dict(drop="maybe"), "drop 'maybe'"),
])
def test_a_bad_row_names_its_fault(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_row({**GOOD, **change})


def test_a_good_row_is_normalised_and_an_empty_one_is_pending() -> None:
    note = parse_row({**GOOD, "answer_1": "(B)", "answer_2": " a ", "question": " Is  it\nopen? "})
    assert note == Annotation(question="Is it open?", option_a="Open", option_b="Closed", answer_1="b", answer_2="a")
    assert note.written and not note.has_statements
    assert parse_row({"drop": "", "question": "  "}) is None
    assert parse_row({"drop": "yes"}) == Annotation(drop=True)


# --- export and import --------------------------------------------------------------------------------------

def test_the_sheet_shows_every_pair_with_its_images(mined: Path) -> None:
    rows = sheet(mined)
    pairs = [json.loads(line) for line in (mined / "pairs.jsonl").read_text().splitlines()]
    assert [(r["pair"], r["image_1"], r["image_2"]) for r in rows] == [
        (str(p["pair"]), *p["images"]) for p in pairs]
    page = (mined / "annotate.html").read_text()
    assert page.count("<section data-pair=") == len(pairs) == 3
    assert page.count("src='data:image/jpeg;base64,") == 2 * len(pairs) and "http" not in page.split("<script>")[0]


def test_import_merges_reports_bad_rows_by_line_and_loses_nothing(mined: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rows = sheet(mined)
    first = write(mined.parent / "first.csv", [fill(rows[0], 1), rows[1], rows[2]])
    assert main(["annotate-pairs", str(mined), "--import", str(first)]) == 0
    assert questions(mined)[:2] == [
        {"Index": "1", "Question": "Are the sides of picture 1 light or dark?", "Options": "(a) Light (b) Dark",
         "Correct Answer": "(a)"},
        {"Index": "2", "Question": "Are the sides of picture 1 light or dark?", "Options": "(a) Light (b) Dark",
         "Correct Answer": "(b)"}]
    assert [r["Question"] for r in questions(mined)[2:]] == ["", "", "", ""]  # still to write

    rows = sheet(mined)  # prefilled with pair 1
    assert rows[0]["question"] == "Are the sides of picture 1 light or dark?" and rows[0]["answer_2"] == "b"
    second = [dict(rows[0], question="", option_a="", option_b="", answer_1="", answer_2="", statement_1="",
                   statement_2="", type=""),  # emptied: changes nothing
              dict(fill(rows[1], 2), answer_2="a"),  # bad: same answer for both images
              dict(rows[2], drop="x"),
              dict(rows[2], pair="9")]  # no such pair
    second_csv = write(mined.parent / "second.csv", second)
    before = second_csv.read_bytes()
    assert main(["annotate-pairs", str(mined), "--import", str(second_csv)]) == 2
    err = capsys.readouterr().err
    assert f"{second_csv}:3: pair 2: both images have the answer (a)" in err
    assert f"{second_csv}:5: pair '9' is not one of the 3 mined pairs" in err
    assert "2 row(s) not imported" in err
    assert second_csv.read_bytes() == before  # the filled file is never touched
    notes = read_annotations(mined)
    assert notes[1].written and notes[3].drop and 2 not in notes
    assert len(questions(mined)) == 4  # pair 3 dropped: pairs 1 and 2 remain, renumbered
    assert questions(mined)[0]["Question"].startswith("Are the sides of picture 1")
    assert [r["Statement"] for r in questions(mined, "MMVP_VLM")] == ["The sides are light", "The sides are dark"]
    assert (mined / "MMVP" / "MMVP_VLM" / "MLLM_VLM Images" / "Color" / "2.jpg").is_file()


def test_a_sheet_of_other_pairs_is_refused_row_by_row(mined: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = sheet(mined)
    rows[0]["image_1"] = "somewhere/else.png"
    filled = write(mined.parent / "other.csv", [fill(rows[0], 1), fill(rows[0].copy(), 1)])
    assert main(["annotate-pairs", str(mined), "--import", str(filled)]) == 2
    err = capsys.readouterr().err
    assert "another mining" in err and f"{filled}:3: pair 1 again (first on line 2)" in err
    assert read_annotations(mined) == {}


def test_mining_again_over_written_questions_is_refused(mined: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = sheet(mined)
    assert main(["annotate-pairs", str(mined), "--import", str(write(mined / "f.csv", [fill(rows[0], 1)]))]) == 0
    mining = json.loads((mined / "mining.json").read_text())["options"]
    assert main(["mine-pairs", mining["images_dir"], "--out", str(mined), "--clip", mining["clip"],
                 "--ssl", mining["ssl"]]) == 2
    assert "holds questions written for earlier mined pairs" in capsys.readouterr().err


# --- the written benchmark runs ----------------------------------------------------------------------------

def test_evalkit_run_reads_the_written_benchmark(mined: Path, tmp_path: Path) -> None:
    from evalkit.testing.tiny_models import build_clip

    rows = sheet(mined)
    assert main(["annotate-pairs", str(mined), "--import",
                 str(write(tmp_path / "all.csv", [fill(r, k) for k, r in enumerate(rows, 1)]))]) == 0
    results = tmp_path / "results"
    for model, task in (("reference", "mmvp"), (str(build_clip(tmp_path / "clip")), "mmvp_vlm")):
        assert main(["run", "--model", model, "--tasks", task, "--data-dir", str(mined), "--output", str(results),
                     "--no-progress"]) == 0
    for run in results.iterdir():
        for task, result in json.loads((run / "run.json").read_text())["tasks"].items():
            assert result["n_errors"] == 0 and result["n"] == {"mmvp": 6, "mmvp_vlm": 3}[task]
            assert "pair_accuracy" in result["metrics"]


CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_html_form_downloads_a_sheet_that_imports(mined: Path, tmp_path: Path) -> None:
    """Fill pair 2 in a real headless Chromium through the page's inputs; its CSV (csvText, what the download
    button saves) imports."""
    sheet(mined)
    page = (mined / "annotate.html").read_text()
    driver = """<script>var s=document.querySelector('section[data-pair="2"]');
set(s,'question','Is the frame "light", or dark?');set(s,'option_a','Light');set(s,'option_b','Dark');
set(s,'answer_1','b');set(s,'answer_2','a');set(s,'drop','');
var pre=document.createElement('pre');pre.id='csv';pre.textContent=csvText();document.body.appendChild(pre);</script>"""
    (tmp_path / "page.html").write_text(page.replace("</body>", driver + "</body>"))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--dump-dom", (tmp_path / "page.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    import html

    text = html.unescape(re.search(r"<pre id=\"csv\">(.*?)</pre>", dom, re.S).group(1))  # type: ignore[union-attr]
    filled = tmp_path / "downloaded.csv"
    filled.write_text(text)
    assert main(["annotate-pairs", str(mined), "--import", str(filled)]) == 0
    assert read_annotations(mined) == {2: Annotation(question='Is the frame "light", or dark?', option_a="Light",
                                                     option_b="Dark", answer_1="b", answer_2="a")}
