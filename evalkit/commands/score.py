"""`evalkit score RUN_DIR`: recompute metrics from a run's stored samples; --check exits 1 if they differ."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evalkit.commands.options import add_judge_options, judge_config


def add_parser(sub: Any) -> None:
    p = sub.add_parser("score", help="recompute metrics from a run's stored samples")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 if the stored metrics are not reproduced")
    p.add_argument("--write", action="store_true", help="write the recomputed metrics into run.json")
    add_judge_options(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from evalkit.core.results import read_run, write_run
    from evalkit.runner import rescore

    stored = read_run(args.run_dir)
    fresh = rescore(args.run_dir, judge=judge_config(args))
    differ = [n for n in stored.tasks if stored.tasks[n].metrics != fresh.tasks[n].metrics]
    for name, result in fresh.tasks.items():
        metric = result.metrics.get(result.primary_metric)
        print(f"{name}: {result.primary_metric} = {metric.value if metric else None}"
              + ("  (differs from stored)" if name in differ else ""))
    if args.write:
        write_run(Path(args.run_dir), fresh)
    return 1 if differ and args.check else 0
