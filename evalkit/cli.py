"""The `evalkit` command. One small function per subcommand; heavy imports happen inside them.

Exit codes: 0 ok; 1 a check failed (error rate above the limit, regression); 2 bad usage or input;
130 interrupted (Ctrl-C; the run folder is kept and `--resume` completes it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from evalkit import __version__
from evalkit.errors import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _key_values(text: str) -> dict[str, Any]:
    """'a=1,b=x' -> {'a': 1, 'b': 'x'} (values parsed as JSON when they are)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{part!r} is not key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _add_run(sub: Any) -> None:
    p = sub.add_parser("run", help="evaluate a model on tasks")
    p.add_argument("--model", required=True, help="family (llava), 'reference', a local folder or a hub id")
    p.add_argument("--tasks", required=True, help="comma list of tasks or groups (see `evalkit list tasks`)")
    p.add_argument("--backend", default="hf", help="hf (transformers) or vllm")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--limit", type=_positive_int, default=None, help="evaluate at most N samples per task")
    p.add_argument("--data-dir", type=Path, default=None, help="local mirror of hub datasets: DIR/<org>/<name>")
    p.add_argument("--output", type=Path, default=Path("results"))
    p.add_argument("--resume", action="store_true", help="continue the latest unfinished run of this model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    p.add_argument("--revision", default=None, help="hub revision of the model")
    p.add_argument("--backend-args", type=_key_values, default={}, help="engine options key=value,...")
    p.add_argument("--max-error-rate", type=float, default=0.0,
                   help="exit 1 when a task's share of failed samples exceeds this (default 0)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own Python code")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--judge", default=None, metavar="MODEL",
                   help="LLM judge for judged tasks (owleval), on an OpenAI-compatible endpoint")
    p.add_argument("--judge-url", default=None, metavar="URL", help="the judge's API root (default: OpenAI)")
    p.add_argument("--judge-args", type=_key_values, default={},
                   help="judge options key=value,...: api_key_env, max_concurrency, images, temperature")
    p.add_argument("--data-parallel", type=_positive_int, default=1, metavar="N",
                   help="N model replicas on Ray (one GPU each where the cluster has GPUs); needs evalkit[ray]")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster for the replicas (auto, HOST:6379); default: RAY_ADDRESS, else a local Ray")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from evalkit.report import print_run_summary
    from evalkit.runner import Interrupted, RunOptions, Runner
    from evalkit.tasks import expand_tasks

    if not 0.0 <= args.max_error_rate <= 1.0:
        raise UsageError(f"--max-error-rate {args.max_error_rate}: give a share between 0 and 1")
    opts = RunOptions(
        model=args.model, tasks=expand_tasks(args.tasks), backend=args.backend, batch_size=args.batch_size,
        limit=args.limit, data_dir=args.data_dir, output=args.output, resume=args.resume, seed=args.seed,
        device=args.device, dtype=args.dtype, revision=args.revision, backend_args=args.backend_args,
        max_error_rate=args.max_error_rate, trust_remote_code=args.trust_remote_code,
        progress=not args.no_progress, judge=_judge(args),
    )
    try:
        if args.data_parallel > 1 or args.ray_address:
            from evalkit.distributed import DataParallelOptions, DataParallelRunner

            dp = DataParallelOptions(replicas=args.data_parallel, address=args.ray_address)
            record, run_dir = DataParallelRunner(opts, dp).run()
        else:
            record, run_dir = Runner(opts).run()
    except Interrupted as exc:
        print(f"evalkit: {exc}", file=sys.stderr)
        return 130
    print_run_summary(record, run_dir)
    over = [name for name, t in record.tasks.items() if t.n and t.n_errors / t.n > opts.max_error_rate]
    if over:
        print(f"evalkit: error rate above {opts.max_error_rate} in {', '.join(over)} (see the 'error' field of "
              f"{run_dir}/samples/*.jsonl)", file=sys.stderr)
        return 1
    return 0


def _judge(args: argparse.Namespace) -> Any:
    """The JudgeConfig of --judge/--judge-url/--judge-args, or None (then EVALKIT_JUDGE_* apply)."""
    if not args.judge:
        return None
    from evalkit.judge import JudgeConfig

    return JudgeConfig.from_options(args.judge, args.judge_url, args.judge_args)


def cmd_list(args: argparse.Namespace) -> int:
    from evalkit.catalog import list_models, list_tasks

    rows = list_tasks() if args.what == "tasks" else list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(*rows[0].keys()) if rows else Table()
    for row in rows:
        table.add_row(*(", ".join(v) if isinstance(v, list) else str(v) for v in row.values()))
    Console().print(table)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from evalkit.results import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Rescore a finished run from its stored samples; with --check, exit 1 if metrics differ."""
    from evalkit.results import read_run, write_run
    from evalkit.runner import rescore

    stored = read_run(args.run_dir)
    fresh = rescore(args.run_dir, judge=_judge(args))
    differ = [n for n in stored.tasks if stored.tasks[n].metrics != fresh.tasks[n].metrics]
    for name, result in fresh.tasks.items():
        metric = result.metrics.get(result.primary_metric)
        print(f"{name}: {result.primary_metric} = {metric.value if metric else None}"
              + ("  (differs from stored)" if name in differ else ""))
    if args.write:
        write_run(Path(args.run_dir), fresh)
    return 1 if differ and args.check else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evalkit", description="Evaluate multimodal LLMs on standard benchmarks.")
    parser.add_argument("--version", action="version", version=f"evalkit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    p = sub.add_parser("list", help="list tasks or models")
    p.add_argument("what", choices=["tasks", "models"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("schema", help="print the JSON Schema of the result files")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("score", help="recompute metrics from a run's stored samples")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 if the stored metrics are not reproduced")
    p.add_argument("--write", action="store_true", help="write the recomputed metrics into run.json")
    p.add_argument("--judge", default=None, metavar="MODEL",
                   help="LLM judge for judged tasks (owleval), on an OpenAI-compatible endpoint")
    p.add_argument("--judge-url", default=None, metavar="URL", help="the judge's API root (default: OpenAI)")
    p.add_argument("--judge-args", type=_key_values, default={},
                   help="judge options key=value,...: api_key_env, max_concurrency, images, temperature")
    p.set_defaults(func=cmd_score)
    from evalkit import commands

    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.WARNING - 10 * args.verbose, format="%(levelname)s %(name)s: %(message)s")
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"evalkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not the user's fault: one line, the traceback with -v
        if args is not None and args.verbose:
            raise
        print(f"evalkit: internal error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
