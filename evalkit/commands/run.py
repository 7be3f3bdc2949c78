"""`evalkit run`: evaluate a model on tasks. Its flags come from the fields of ``evalkit.runner.options.RunOptions``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING
from pathlib import Path
from typing import Any

from evalkit.commands.options import add_judge_options, judge_config, key_values, positive_int
from evalkit.core.errors import UsageError

_KINDS: dict[str | None, dict[str, Any]] = {
    None: {}, "tasks": {}, "positive_int": {"type": positive_int}, "int": {"type": int}, "float": {"type": float},
    "path": {"type": Path}, "key_values": {"type": key_values}, "flag": {"action": "store_true"},
    "no_flag": {"action": "store_false"},  # a default-True option, turned off by --no-<name>
}


def add_parser(sub: Any) -> None:
    from evalkit.runner.options import cli_fields

    p = sub.add_parser("run", help="evaluate a model on tasks")
    for f in cli_fields():
        kwargs = dict(_KINDS[f.metadata["kind"]], help=f.metadata["help"])
        if f.metadata["metavar"]:
            kwargs["metavar"] = f.metadata["metavar"]
        if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
            kwargs["required"] = True
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            kwargs["default"] = f.default_factory()  # type: ignore[misc]
        elif kwargs.get("action") != "store_true":
            kwargs["default"] = f.default
        flag = ("--no-" if f.metadata["kind"] == "no_flag" else "--") + f.name.replace("_", "-")
        p.add_argument(flag, *f.metadata["aliases"], dest=f.name, **kwargs)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true",
                   help="print run.json's tasks block (metrics, counts, generation) as JSON instead of the table")
    add_judge_options(p)
    p.add_argument("--data-parallel", type=positive_int, default=1, metavar="N",
                   help="N model replicas on Ray (one GPU each where the cluster has GPUs); needs evalkit[ray]")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster for the replicas (auto, HOST:6379); default: RAY_ADDRESS, else a local Ray")
    p.set_defaults(func=cmd_run)


def options_from_args(args: argparse.Namespace) -> Any:
    from evalkit.runner.options import RunOptions, cli_fields
    from evalkit.tasks import expand_tasks

    values = {f.name: getattr(args, f.name) for f in cli_fields()}
    values["tasks"] = expand_tasks(args.tasks)
    return RunOptions(**values, progress=not args.no_progress, judge=judge_config(args))


def cmd_run(args: argparse.Namespace) -> int:
    from evalkit.commands.report import print_run_summary
    from evalkit.runner import Interrupted, Runner

    if not 0.0 <= args.max_error_rate <= 1.0:
        raise UsageError(f"--max-error-rate {args.max_error_rate}: give a share between 0 and 1")
    opts = options_from_args(args)
    try:
        if args.data_parallel > 1 or args.ray_address:
            from evalkit.interop.distributed import DataParallelOptions, DataParallelRunner

            dp = DataParallelOptions(replicas=args.data_parallel, address=args.ray_address)
            record, run_dir = DataParallelRunner(opts, dp).run()
        else:
            record, run_dir = Runner(opts).run()
    except Interrupted as exc:
        print(f"evalkit: {exc}", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(record.model_dump(mode="json")["tasks"], indent=2))
    else:
        print_run_summary(record, run_dir)
    over = [name for name, t in record.tasks.items() if t.n and t.n_errors / t.n > opts.max_error_rate]
    if over:
        print(f"evalkit: error rate above {opts.max_error_rate} in {', '.join(over)} (see the 'error' field of "
              f"{run_dir}/samples/*.jsonl)", file=sys.stderr)
        return 1
    return 0
