"""Text from result files and datasets made safe to print on a terminal.

Model names, task names, outputs and error messages come from files anyone can write. Printed raw, an escape
sequence in them (``\\x1b]0;...`` retitles the window, ``\\x1b[2J`` clears it, a bidi override reorders what
follows) acts on the reader's terminal. :func:`printable` shows every such character as a visible escape instead.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode bidi
# embeddings/overrides/isolates that reorder the text after them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with control characters (ESC, BEL, CSI, bidi overrides, ...) written as visible escapes
    (``\\x1b``); tabs and newlines are kept."""
    return _CONTROL.sub(_escape, str(text))
