"""`evalkit schema`: print the JSON Schema of the result files."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the result files")
    p.set_defaults(func=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    from evalkit.core.results import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0
