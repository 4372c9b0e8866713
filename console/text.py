"""Making text from the hub safe to print: control characters shown as escapes."""

from __future__ import annotations

import re

# C0 and C1 controls, and the bidirectional overrides that can make text read backwards.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str | None) -> str:
    """Replace control characters (terminal escapes among them) with visible `\\xNN` escapes.

    Hub-supplied task types, errors and reasons go through this before they
    reach a log line, so a hostile value cannot move the cursor, recolour the
    terminal or forge a second log line.
    """
    if text is None:
        return ""
    return _CONTROL.sub(_escape, text.replace("\n", "\\n"))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
