"""The `evalkit` command: the parser and the exit codes. Each subcommand is a module of evalkit.commands.

Exit codes: 0 ok; 1 a check failed (error rate above the limit, regression); 2 bad usage or input;
130 interrupted (Ctrl-C; the run folder is kept and `--resume` completes it).
"""

from __future__ import annotations

import argparse
import logging
import sys

from evalkit import __version__
from evalkit.core.errors import UsageError
from evalkit.core.terminal import printable


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evalkit", description="Evaluate multimodal LLMs on standard benchmarks.")
    parser.add_argument("--version", action="version", version=f"evalkit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from evalkit.commands import register

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.WARNING - 10 * args.verbose, format="%(levelname)s %(name)s: %(message)s")
        return int(args.func(args) or 0)
    except UsageError as exc:  # the message may quote dataset or result-file content: escaped
        print(f"evalkit: error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not the user's fault: one line, the traceback with -v
        if args is not None and args.verbose:
            raise
        print(f"evalkit: internal error: {type(exc).__name__}: {printable(exc)} (rerun with -v for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
