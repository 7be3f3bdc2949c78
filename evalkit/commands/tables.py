"""Tables that read anywhere: the one way `run`, `list`, `leaderboard` and `compare` print a table.

On a terminal: a rich table sized to the terminal, long names folded onto more lines (never cut to "refere…").
Anywhere else (a CI log, ``| tee``, a file, a notebook): a Markdown-style table with every cell in full, as wide
as its content needs, no colour codes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Wide enough that no table is squeezed; rich sizes an unexpanded table to its content, not to this.
_UNBOUNDED = 10_000


@dataclass(frozen=True)
class Col:
    """A column: its title, and whether it holds numbers (right-aligned)."""

    title: str
    numeric: bool = False


def is_terminal(console: Any = None) -> bool:
    return bool(console.is_terminal) if console is not None else sys.stdout.isatty()


def wide_console() -> Any:
    """The console commands print to: the terminal's width on a terminal, else unbounded (no wrapping, no
    truncation) and plain (no colour codes)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=_UNBOUNDED, no_color=True, highlight=False)


def print_table(columns: Sequence[str | Col], rows: Iterable[Sequence[Any]], *, title: str | None = None,
                console: Any = None) -> None:
    """Print ``rows`` under ``columns``. A cell is a string (printed as is, never read as rich markup) or a rich
    ``Text`` (its style kept on a terminal)."""
    from rich.text import Text

    from evalkit.core.terminal import printable

    console = console or wide_console()
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    cells = [[_safe_cell(c) if isinstance(c, Text) else Text(printable(c)) for c in row] for row in rows]
    title = None if title is None else printable(title)
    if not is_terminal(console):
        for line in markdown_lines(cols, [[c.plain for c in row] for row in cells], title):
            console.print(Text(line), soft_wrap=True)  # soft wrap: never folded at the console's width
        return
    from rich.table import Table

    table = Table(title=title)
    for col in cols:
        table.add_column(col.title, justify="right" if col.numeric else "left", overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _safe_cell(cell: Any) -> Any:
    """A rich Text with its control characters escaped (evalkit.core.terminal); its style kept."""
    from rich.text import Text

    from evalkit.core.terminal import printable

    safe = printable(cell.plain)
    return cell if safe == cell.plain else Text(safe, style=cell.style)


def markdown_lines(columns: Sequence[Col], rows: Sequence[Sequence[str]], title: str | None = None) -> list[str]:
    """A Markdown table, padded so it also reads as plain aligned text; every cell in full."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    head = [esc(c.title) for c in columns]
    body = [[esc(cell) for cell in row] for row in rows]
    widths = [max([3, len(head[i])] + [len(r[i]) for r in body if i < len(r)]) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.rjust(w) if col.numeric else cell.ljust(w) for cell, w, col in zip(cells, widths, columns)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if c.numeric else "-" * (w + 2) for w, c in zip(widths, columns)) + "|"
    return ([title, ""] if title else []) + [line(head), rule] + [line(r) for r in body]
