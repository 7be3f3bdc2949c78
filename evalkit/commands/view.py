"""`evalkit view RUN_DIR [CANDIDATE]`: one self-contained HTML page to look at the samples of a run, or at the
samples two runs both scored with the flips first and compare's paired tests on top.

    evalkit view results/RUN                        # writes results/RUN/view.html and prints its path
    evalkit view results/BASE results/CAND --open   # writes results/CAND/view-vs-<base run id>.html, opens it

Rows, statuses and images: evalkit.commands.viewer_data; the page: evalkit.commands.viewer_html; the
user guide: docs/viewer.md. `evalkit compare A B --html FILE` writes the same comparison page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.commands.viewer_data import DEFAULT_MAX_IMAGES, ViewOptions

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.commands.compare import Comparison

VIEW_FILE = "view.html"  # the leaderboard links a run to RUN_DIR/view.html when it exists


def _write(path: Path, text: str) -> Path:
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_run_page(run: Path, out: Path | None = None, opts: ViewOptions | None = None) -> Path:
    """The page of one run; default ``RUN_DIR/view.html``. Returns the path written."""
    from evalkit.commands.viewer_data import build_run_page
    from evalkit.commands.viewer_html import render_page

    side, page = build_run_page(Path(run), opts or ViewOptions())
    return _write(out or side.run_dir / VIEW_FILE, render_page(page, side=side))


def write_compare_page(cmp: Comparison, out: Path, opts: ViewOptions | None = None) -> Path:
    """The page of a comparison (``compare_runs``' result). Returns the path written."""
    from evalkit.commands.viewer_data import build_compare_page
    from evalkit.commands.viewer_html import render_page

    return _write(out, render_page(build_compare_page(cmp, opts or ViewOptions()), cmp=cmp))


def view(runs: list[Path], out: Path | None = None, opts: ViewOptions | None = None) -> Path:
    """One run folder: its page; two: the comparison page (default in the candidate's folder)."""
    from evalkit.commands.compare import CompareOptions, compare_runs

    if len(runs) == 1:
        return write_run_page(runs[0], out, opts)
    # Differing data or prompt protocols are shown as compare's notes on the page rather than refused: the point
    # is to look at what changed.
    cmp = compare_runs(runs[0], runs[1], CompareOptions(allow_dataset_change=True, allow_protocol_change=True))
    return write_compare_page(cmp, out or cmp.candidate.run_dir / f"view-vs-{cmp.baseline.record.run_id}.html",
                              opts)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("view", help="write a self-contained HTML page of a run's samples (or two runs' flips)",
                       description="Write one HTML page (inline CSS/JS, thumbnails embedded, nothing fetched) "
                                   "showing every sample: image, prompt, output, parsed answer, target, scores, "
                                   "errors; with filters and search. Two runs: the samples both scored, flips "
                                   "first, and compare's paired tests. Prints the page's path.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                   help="a run folder (or run.json); two: BASELINE CANDIDATE")
    p.add_argument("--html", type=Path, default=None,
                   help=f"where to write the page (default RUN/{VIEW_FILE}; two runs: "
                        "CANDIDATE/view-vs-<baseline run id>.html)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="local mirror of hub datasets, as in `evalkit run` (default: the run's own --data-dir)")
    p.add_argument("--max-images", type=int, default=DEFAULT_MAX_IMAGES,
                   help=f"thumbnails embedded at most, wrong (or flipped) samples first (default "
                        f"{DEFAULT_MAX_IMAGES}; 0: none)")
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    from evalkit.core.errors import UsageError

    if len(args.runs) > 2:
        raise UsageError(f"view takes one run folder, or two (BASELINE CANDIDATE); got {len(args.runs)}")
    opts = ViewOptions(data_dir=args.data_dir, max_images=args.max_images)
    path = view(list(args.runs), args.html, opts)
    print(path)
    if args.open:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            print(f"evalkit: could not open a browser; open {path} yourself", file=sys.stderr)
    return 0
