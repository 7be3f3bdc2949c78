"""`evalkit selftest`: run the bundled reference model through every installed backend and check its
scores against the committed baseline. The first thing to run on a new machine or GPU box.

The baseline (results/baselines/reference/run.json) was produced on CPU in float32. Another device or
dtype changes low-order bits and can flip a few greedy answers, hence a tolerance in points.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError

DEFAULT_TOLERANCE = 2.0  # points on the x100 scale
BASELINE_NAME = "reference"


def baseline_dir() -> Path:
    """results/baselines/reference in a source checkout; the packaged copy otherwise."""
    package = Path(__file__).resolve().parents[1]  # evalkit/ (this file is evalkit/commands/selftest.py)
    for candidate in (package.parent / "results" / "baselines" / BASELINE_NAME, package / "baselines" / BASELINE_NAME):
        if (candidate / "run.json").is_file():
            return candidate
    raise UsageError("no reference baseline found (results/baselines/reference/run.json); run `make baseline`")


def installed_backends() -> list[str]:
    names = ["hf"]
    if importlib.util.find_spec("vllm") is not None:
        names.append("vllm")
    return names


def check_backend(backend: str, baseline: Any, tolerance: float, batch_size: int) -> list[dict[str, Any]]:
    """Run the baseline's tasks on ``backend``; one row per task with both values and pass/fail."""
    from evalkit.runner import RunOptions, Runner

    with tempfile.TemporaryDirectory(prefix="evalkit-selftest-") as out:
        opts = RunOptions(model="reference", tasks=list(baseline.config.tasks), backend=backend,
                          batch_size=batch_size, output=Path(out), progress=False, max_error_rate=0.0)
        record, _ = Runner(opts).run()
    rows = []
    for name, base in baseline.tasks.items():
        got = record.tasks.get(name)
        want = base.metrics[base.primary_metric].value
        value = got.metrics[got.primary_metric].value if got else None
        ok = got is not None and got.n_errors == 0 and value is not None and want is not None \
            and abs(value - want) <= tolerance
        rows.append({"backend": backend, "task": name, "metric": base.primary_metric, "baseline": want,
                     "value": value, "errors": got.n_errors if got else None, "pass": ok})
    return rows


def add_parser(sub: Any) -> None:
    p = sub.add_parser("selftest", help="check the reference model's scores on every installed backend")
    p.add_argument("--backends", default=None, help="comma list (default: every installed backend)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="allowed |delta| in points")
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(func=cmd_selftest)


def cmd_selftest(args: Any) -> int:
    from rich.text import Text

    from evalkit.commands.tables import Col, print_table, wide_console
    from evalkit.core.results import read_run

    baseline = read_run(baseline_dir())
    backends = args.backends.split(",") if args.backends else installed_backends()
    rows = []
    failed = False
    for backend in backends:
        for row in check_backend(backend.strip(), baseline, args.tolerance, args.batch_size):
            failed |= not row["pass"]
            rows.append([row["backend"], row["task"], row["metric"], f"{row['baseline']}", f"{row['value']}",
                         str(row["errors"]), Text("pass", style="green") if row["pass"] else Text("FAIL", style="red")])
    console = wide_console()
    print_table(["backend", "task", "metric", Col("baseline", True), Col("value", True), Col("errors", True),
                 "result"], rows, title="evalkit selftest", console=console)
    console.print(Text(f"tolerance ±{args.tolerance} points; ")
                  + (Text("FAILED", style="red") if failed else Text("all passed", style="green")))
    return 1 if failed else 0
