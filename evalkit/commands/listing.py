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
    from evalkit.commands.tables import print_table

    columns = list(rows[0].keys()) if rows else []
    print_table(columns, [[", ".join(v) if isinstance(v, list) else str(v) for v in row.values()] for row in rows])
    return 0
