"""`evalkit score RUN_DIR`: recompute metrics from a run's stored samples; --check exits 1 if they differ."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evalkit.commands.options import add_judge_options, judge_config
from evalkit.core.terminal import printable


def add_parser(sub: Any) -> None:
    p = sub.add_parser("score", help="recompute metrics from a run's stored samples")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--check", action="store_true",
                   help="exit 1 if the stored metrics are not reproduced, run.json's counts are not those of the "
                        "stored samples, or the stored ids/targets are not the dataset's (when it can be read)")
    p.add_argument("--write", action="store_true",
                   help="write the recomputed metrics and error counts into run.json and append the sample records "
                        "that changed (e.g. new judge scores) to the samples files; no stored line is rewritten")
    add_judge_options(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from evalkit.core.results import read_run, write_run
    from evalkit.runner import rescore

    stored = read_run(args.run_dir)
    judge = judge_config(args)
    # A judged task's --check recomputes from the judgements stored on the samples: the judge is called only
    # when asked for (--judge) or when rescoring without --check (e.g. to judge pending answers).
    fresh = rescore(args.run_dir, judge=judge, call_judge=judge is not None or not args.check, write=args.write)
    differ = [n for n in stored.tasks if stored.tasks[n].metrics != fresh.tasks[n].metrics]
    for name, result in fresh.tasks.items():
        metric = result.metrics.get(result.primary_metric)
        print(printable(f"{name}: {result.primary_metric} = {metric.value if metric else None}"
                        + ("  (differs from stored)" if name in differ else "")))
    problems: list[str] = []
    if args.check:
        from evalkit.runner.verify import verify_run

        verified = verify_run(Path(args.run_dir), stored)
        problems = verified.problems
        for line in verified.notes:
            print(printable(f"note: {line}"))
        for line in problems:
            print(printable(f"check failed: {line}"))
    if args.write:
        write_run(Path(args.run_dir), fresh)
    return 1 if (differ or problems) and args.check else 0
