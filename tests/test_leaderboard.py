"""`evalkit leaderboard`: discovery, ordering, and what the terminal, Markdown, CSV, HTML and plots show."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import struct
from pathlib import Path

import pytest
from result_factory import TaskSpec, make_run
from rich.console import Console

from evalkit.cli import main
from evalkit.commands.leaderboard import build_leaderboard, print_leaderboard, to_csv, to_markdown
from evalkit.commands.leaderboard_html import render_html

XSS = "<script>alert(1)</script>"


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """Three runs in nested folders: a strong CPU run, a weak GPU run, an interrupted run with a hostile name."""
    root = tmp_path / "results"
    make_run(root / "team-a", "run-strong", {"vqa": TaskSpec([1.0, 1.0, 1.0, 0.0]),
                                             "pairs": TaskSpec([1.0, 0.0], samples_per_s=3.0)},
             model="llava-7b", checkpoint="llava-hf/llava-1.5-7b-hf", created_at="2024-05-01T10:00:00+00:00",
             samples_per_s=12.5, gen_tok_s=80.0, rss_mb=2048.0)
    make_run(root / "team-b" / "nightly", "run-weak", {"vqa": TaskSpec([1.0, 0.0, 0.0, 0.0])},
             model="tiny", checkpoint="./ckpt/step-5000", backend="vllm", created_at="2024-05-03T08:30:00+00:00",
             samples_per_s=40.0, gen_tok_s=300.0, rss_mb=1500.0, gpu_mb=6144.0)
    make_run(root, "run-hostile", {"vqa": TaskSpec([1.0, 0.0])}, model=XSS, checkpoint="=cmd|' /C calc'!A0",
             status="interrupted", created_at="2024-05-02T00:00:00+00:00")
    return root


def _files(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_finds_runs_recursively_and_orders_by_first_task(results: Path) -> None:
    lb = build_leaderboard(results)
    assert [c.task for c in lb.columns] == ["pairs", "vqa"]
    # first column "pairs": only run-strong has it; the others follow, newest first
    assert [e.record.run_id for e in lb.entries] == ["run-strong", "run-weak", "run-hostile"]
    assert [e.relpath for e in lb.entries] == ["team-a/run-strong", "team-b/nightly/run-weak", "run-hostile"]
    lb = build_leaderboard(results, ("vqa",))
    assert [c.task for c in lb.columns] == ["vqa"]
    assert [e.record.run_id for e in lb.entries] == ["run-strong", "run-hostile", "run-weak"]  # 75, 50, 25


def test_unreadable_run_is_skipped_and_named(results: Path) -> None:
    broken = results / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    lb = build_leaderboard(results)
    assert len(lb.entries) == 3
    assert len(lb.skipped) == 1 and str(broken) in lb.skipped[0] and "not valid JSON" in lb.skipped[0]


def test_terminal_table(results: Path) -> None:
    console = Console(file=io.StringIO(), width=250, record=True)
    print_leaderboard(build_leaderboard(results), console)
    text = console.export_text()
    strong = next(line for line in text.splitlines() if "llava-7b" in line)
    for cell in ("llava-hf/llava-1.5-7b-hf", "hf", "2024-05-01 10:00", "50.00 ± 50.00", "75.00 ± 25.00", "12.50",
                 "80.0", "2048 MB RSS"):
        assert cell in strong, cell
    weak = next(line for line in text.splitlines() if "tiny" in line)
    assert "6144 MB GPU" in weak and "vllm" in weak and "./ckpt/step-5000" in weak
    hostile = next(line for line in text.splitlines() if "alert" in line)
    assert XSS in hostile and "[interrupted]" in hostile
    assert "[interrupted]" not in strong


def test_markdown_escapes_and_marks_incomplete_runs(results: Path) -> None:
    md = to_markdown(build_leaderboard(results))
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0] == ("| model | checkpoint | backend | date | pairs (accuracy) | vqa (accuracy) | samples/s | "
                       "gen tok/s | peak memory |")
    assert rows[1] == ("| llava-7b | llava-hf/llava-1.5-7b-hf | hf | 2024-05-01 10:00 | 50.00 ± 50.00 | "
                       "75.00 ± 25.00 | 12.50 | 80.0 | 2048 MB RSS |")
    hostile = rows[3]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; **(interrupted)**" in hostile
    assert "<script>" not in md
    assert "=cmd\\|' /C calc'!A0" in hostile  # the pipe cannot split the cell
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 10 for line in rows)  # 9 cells in every row


def test_csv_is_machine_readable(results: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(build_leaderboard(results)))))
    strong, weak, hostile = rows
    assert strong["vqa/accuracy"] == "75.0" and strong["vqa/accuracy_stderr"] == "25.0" and strong["vqa/n"] == "4"
    assert strong["pairs/accuracy"] == "50.0" and weak["pairs/accuracy"] == ""
    assert (weak["peak_memory_mb"], weak["peak_memory_kind"]) == ("6144.0", "GPU")
    assert (strong["peak_memory_mb"], strong["peak_memory_kind"]) == ("2048.0", "RSS")
    assert weak["run_dir"] == "team-b/nightly/run-weak" and weak["backend"] == "vllm"
    assert hostile["status"] == "interrupted" and hostile["model"] == XSS
    assert hostile["checkpoint"] == "'=cmd|' /C calc'!A0"  # a spreadsheet does not run it as a formula


def test_html_is_self_contained_and_escaped(results: Path) -> None:
    page = render_html(build_leaderboard(results))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1  # only the page's own sorting script
    for remote in ("http://", "https://", "//cdn", "<link", "src="):
        assert remote not in page, remote
    csp = re.search(r"http-equiv='Content-Security-Policy' content=\"([^\"]*)\"", page)
    assert csp and html.unescape(csp.group(1)).startswith("default-src 'none';")
    # one body per run, each with its details (config, environment, per-task metrics)
    assert page.count("<tbody class='run") == 3 and page.count("<tr class='details' hidden>") == 3
    assert "&quot;batch_size&quot;: 8" in page and "<th>torch</th><td>2.4.0</td>" in page
    assert "<span class='badge'>interrupted</span>" in page


def test_cli_writes_every_output_and_touches_no_result_file(results: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(results)
    out = tmp_path / "site"
    code = main(["leaderboard", str(results), "--md", str(out / "lb.md"), "--csv", str(out / "lb.csv"),
                 "--html", str(out / "index.html"), "--plots", str(out / "plots")])
    assert code == 0
    assert _files(results) == before  # a pure function of the result files
    stdout = capsys.readouterr().out
    assert "llava-7b" in stdout and f"wrote {out / 'index.html'}" in stdout
    assert (out / "lb.md").read_text().startswith("# evalkit leaderboard")
    assert (out / "lb.csv").read_text().startswith("run_id,run_dir,model")
    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == ["peak_memory.png", "score_vs_throughput_pairs.png", "score_vs_throughput_vqa.png"]
    for name in pngs:
        data = (out / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 400 and height >= 100
    # the same inputs give byte-identical text outputs
    again = tmp_path / "again.md"
    assert main(["leaderboard", str(results), "--md", str(again)]) == 0
    assert again.read_text() == (out / "lb.md").read_text()


def test_task_filter_cli(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb.csv"
    assert main(["leaderboard", str(results), "--tasks", "pairs", "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["run_id"] for r in rows] == ["run-strong"] and "vqa/accuracy" not in rows[0]


@pytest.mark.parametrize("case", ["missing", "empty", "not_a_dir", "unknown_task"])
def test_bad_input_is_exit_2(results: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    argv = {"missing": [str(tmp_path / "nope")], "empty": [str(tmp_path / "empty")],
            "not_a_dir": [str(tmp_path / "file.txt")], "unknown_task": [str(results), "--tasks", "mmvp"]}[case]
    assert main(["leaderboard", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error:") and len(err.strip().splitlines()) == 1


def test_run_json_counts_as_one_run_when_given_directly(results: Path) -> None:
    lb = build_leaderboard(results / "team-a" / "run-strong")
    assert [e.relpath for e in lb.entries] == ["."]
    assert json.loads((results / "team-a" / "run-strong" / "run.json").read_text())["run_id"] == "run-strong"
