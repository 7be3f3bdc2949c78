"""`evalkit list tasks|models`: what can be evaluated, without importing torch."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="list tasks or models")
    p.add_argument("what", choices=["tasks", "models"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    from evalkit.commands.catalog import list_models, list_tasks

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
