"""The leaderboard page in a real headless Chromium: sorting, details, escaping, a screenshot.

Driven with Chromium's own --dump-dom and --screenshot: the URL hash (#sort=KEY / #sort=-KEY, open=RUN)
runs the page's sorting and details code, and the dumped DOM shows the result. Skipped only when no
Chromium is installed (Debian: apt-get install -y chromium).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from result_factory import TaskSpec, make_run

from evalkit.commands.leaderboard import build_leaderboard
from evalkit.commands.leaderboard_html import render_html

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
INJECT_NAME = "<script>document.body.dataset.pwned='script'</script>"
INJECT_CKPT = "<img src=x onerror=\"document.body.dataset.pwned='img'\">"


def chromium(tmp_path: Path, url: str, *extra: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],  # type: ignore[list-item]
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Dom(HTMLParser):
    """What the tests read back from a dumped DOM: run order, open details, body attributes, cell texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.runs: list[str] = []
        self.open: list[str] = []
        self.body: dict[str, str | None] = {}
        self.table: dict[str, str | None] = {}
        self.sorted_th: list[tuple[str | None, str | None]] = []
        self.model_cells: list[str] = []
        self.scripts = 0
        self._in_model = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "script":
            self.scripts += 1
        elif tag == "table" and a.get("id") == "board":
            self.table = a
        elif tag == "tbody" and "run" in (a.get("class") or "").split():  # not the details' inner tables
            self.runs.append(a.get("data-run") or "")
        elif tag == "tr" and a.get("class") == "details" and "hidden" not in a:
            self.open.append(self.runs[-1])
        elif tag == "th" and "aria-sort" in a:
            self.sorted_th.append((a.get("data-key"), a.get("aria-sort")))
        elif tag == "td" and a.get("data-key") == "model":
            self._in_model = True
            self.model_cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "span"):
            self._in_model = False

    def handle_data(self, data: str) -> None:
        if self._in_model:
            self.model_cells[-1] += data


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    make_run(root, "r-mid", {"vqa": TaskSpec([1.0, 0.0]), "cap": TaskSpec([0.5])}, model="mid",
             samples_per_s=20.0, created_at="2024-05-02T00:00:00+00:00")
    make_run(root, "r-top", {"vqa": TaskSpec([1.0, 1.0, 1.0, 0.0])}, model="top", samples_per_s=5.0,
             created_at="2024-05-01T00:00:00+00:00")
    make_run(root, "r-low", {"vqa": TaskSpec([0.0, 0.0, 1.0, 0.0])}, model="alpha", samples_per_s=None,
             created_at="2024-05-03T00:00:00+00:00")
    make_run(root, "r-evil", {"vqa": TaskSpec([0.0, 1.0, 1.0])}, model=INJECT_NAME, checkpoint=INJECT_CKPT,
             status="failed", samples_per_s=9.0, created_at="2024-04-01T00:00:00+00:00")
    out = tmp_path_factory.mktemp("site") / "index.html"
    out.write_text(render_html(build_leaderboard(root)), encoding="utf-8")
    return out


def test_sorts_by_a_numeric_column_both_ways(page: Path, tmp_path: Path) -> None:
    dom = Dom(chromium(tmp_path, page.as_uri() + "#sort=-task:vqa", "--dump-dom"))
    assert dom.runs == ["r-top", "r-evil", "r-mid", "r-low"]  # 75, 66.7, 50, 25
    assert (dom.table.get("data-sort-key"), dom.table.get("data-sort-dir")) == ("task:vqa", "desc")
    assert dom.sorted_th == [("task:vqa", "descending")]
    dom = Dom(chromium(tmp_path, page.as_uri() + "#sort=task:vqa", "--dump-dom"))
    assert dom.runs == ["r-low", "r-mid", "r-evil", "r-top"]


def test_missing_values_sort_last_and_text_columns_sort(page: Path, tmp_path: Path) -> None:
    dom = Dom(chromium(tmp_path, page.as_uri() + "#sort=-samples_per_s", "--dump-dom"))
    assert dom.runs == ["r-mid", "r-evil", "r-top", "r-low"]  # 20, 9, 5, then none
    dom = Dom(chromium(tmp_path, page.as_uri() + "#sort=samples_per_s", "--dump-dom"))
    assert dom.runs == ["r-top", "r-evil", "r-mid", "r-low"]
    dom = Dom(chromium(tmp_path, page.as_uri() + "#sort=model", "--dump-dom"))
    assert dom.runs[:3] == ["r-evil", "r-low", "r-mid"]  # "<script…" < "alpha" < "mid" < "top"


def test_details_open_and_injected_markup_stays_text(page: Path, tmp_path: Path) -> None:
    dom = Dom(chromium(tmp_path, page.as_uri() + "#open=r-evil", "--dump-dom"))
    assert dom.open == ["r-evil"]
    assert "data-pwned" not in dom.body  # neither the script nor the onerror handler ran
    assert dom.scripts == 1  # the page's own script only
    assert INJECT_NAME + "failed" in dom.model_cells  # the name as text, then the status badge
    dom = Dom(chromium(tmp_path, page.as_uri() + "#open=all&sort=-date", "--dump-dom"))
    assert sorted(dom.open) == sorted(dom.runs) and dom.runs[0] == "r-low"


def test_screenshot_is_a_png(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, page.as_uri() + "#open=r-top", f"--screenshot={shot}", "--window-size=1280,800")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert struct.unpack(">II", data[16:24]) == (1280, 800)
