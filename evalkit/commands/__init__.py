"""The subcommands, one module each. The table below is the one place a subcommand is registered.

Each module defines ``add_parser(subparsers)`` (which sets ``func``) and imports nothing heavy at module level.
Order here is the order of ``evalkit --help``.
"""

from __future__ import annotations

import importlib
from typing import Any

COMMANDS: dict[str, str] = {
    "run": "evalkit.commands.run",
    "list": "evalkit.commands.listing",
    "schema": "evalkit.commands.schema",
    "score": "evalkit.commands.score",
    "selftest": "evalkit.commands.selftest",
    "compare": "evalkit.commands.compare",
    "leaderboard": "evalkit.commands.leaderboard",
    "rate": "evalkit.commands.rating",
}


def register(sub: Any) -> None:
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
