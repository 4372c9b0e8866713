"""Making text from the hub safe to print: control characters shown as escapes."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str | None) -> str:
    """Replace control characters (terminal escapes among them) with visible `\\xNN` escapes.

    Hub-supplied task types, errors and reasons go through this before they
    reach a log line, so a hostile value cannot move the cursor, recolour the
    terminal or forge a second log line.
    """
    if text is None:
        return ""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text.replace("\n", "\\n"))
