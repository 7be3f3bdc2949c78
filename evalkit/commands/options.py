"""Argument types and option groups shared by several subcommands (declared once here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _top_level_parts(text: str) -> list[str]:
    """Split on commas outside JSON brackets and double quotes: 'a=1,stop=["x","y"]' -> ['a=1', 'stop=["x","y"]']."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch == '"':
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def key_values(text: str) -> dict[str, Any]:
    """'a=1,b=x' -> {'a': 1, 'b': 'x'} (values parsed as JSON when they are; commas inside JSON lists and
    quotes do not split)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in _top_level_parts(text))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{part!r} is not key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_judge_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--judge", default=None, metavar="MODEL",
                   help="LLM judge for judged tasks (owleval), on an OpenAI-compatible endpoint")
    p.add_argument("--judge-url", default=None, metavar="URL", help="the judge's API root (default: OpenAI)")
    p.add_argument("--judge-args", type=key_values, default={},
                   help="judge options key=value,...: api_key_env, max_concurrency, images, temperature")


def judge_config(args: argparse.Namespace) -> Any:
    """The JudgeConfig of --judge/--judge-url/--judge-args, or None (then EVALKIT_JUDGE_* apply)."""
    if not args.judge:
        return None
    from evalkit.backends.judge import JudgeConfig

    return JudgeConfig.from_options(args.judge, args.judge_url, args.judge_args)


def run_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path)
