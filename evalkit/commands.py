"""Subcommands that live in their own modules (leaderboard, compare, selftest, ...).

Each module listed here defines ``add_parser(subparsers)`` and must import nothing heavy at module level.
"""

from __future__ import annotations

import importlib
from typing import Any

COMMAND_MODULES: tuple[str, ...] = ("evalkit.selftest", "evalkit.compare", "evalkit.leaderboard", "evalkit.rating")


def register(sub: Any) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
