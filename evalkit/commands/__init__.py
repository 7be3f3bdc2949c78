"""The subcommands, one module each. The table below is the one place a subcommand is registered.

Each module defines ``add_parser(subparsers)`` (which sets ``func``) and imports nothing heavy at module level.
Order here is the order of ``evalkit --help``.
"""

from __future__ import annotations

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
    "mine-pairs": "evalkit.commands.mine_pairs",
    "annotate-pairs": "evalkit.commands.annotate_pairs",
    "view": "evalkit.commands.view",
}


def register(sub: Any) -> None:
    """Add every subcommand to ``sub``: the built-in table, then plug-ins (entry point group evalkit.commands,
    each naming an ``add_parser`` function)."""
    from evalkit.core.registry import Registry

    registry: Registry[Any] = Registry("command", entry_point_group="evalkit.commands")
    for name, module in COMMANDS.items():
        registry.register(name, f"{module}:add_parser")
    for name in [*COMMANDS, *(n for n in registry.names() if n not in COMMANDS)]:
        registry.get(name)(sub)
