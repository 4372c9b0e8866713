"""Turn text from the hub into Rich Text that shows every character literally.

Task types, ids, errors and results come from the hub or from handlers, so the
console treats them as data: never as Rich markup, and never as terminal
control sequences.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.widgets import Static

ELLIPSIS = "…"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
"""C0 and C1 controls, plus the invisible and bidirectional formatting characters."""


def escape_controls(value: str, *, keep_newlines: bool = False) -> str:
    """Replace each control or invisible formatting character with its escape, such as `\\x1b`."""

    def replace(match: re.Match[str]) -> str:
        character = match.group()
        if keep_newlines and character == "\n":
            return character
        code = ord(character)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(replace, value)


def literal(value: str, *, style: str = "", max_chars: int | None = None, keep_newlines: bool = False) -> Text:
    """Build a Text that shows `value` as written, cut to `max_chars` with an ellipsis."""
    display = value if max_chars is None else value[: max_chars + 1]
    display = escape_controls(display, keep_newlines=keep_newlines)
    if max_chars is not None and len(display) > max_chars:
        display = display[: max_chars - 1] + ELLIPSIS
    return Text(display, style=style, end="")


def literal_block(value: str, *, max_chars: int, style: str = "") -> Text:
    """Build a multi-line Text of `value`, saying how many characters were left out."""
    text = literal(value[:max_chars], style=style, keep_newlines=True)
    hidden = len(value) - max_chars
    if hidden > 0:
        text.append(f"\n{ELLIPSIS} {hidden:,} more characters not shown", style="dim italic")
    return text


def short_id(task_id: str) -> str:
    """Return the first 8 characters of a task id, as the table shows it."""
    return escape_controls(task_id[:8])


def needs_layout(static: Static, text: Text) -> bool:
    """Check whether showing `text` in place of a Static's content can change the widget's size.

    Textual lays out the whole screen after a Static's update unless `layout=False` is passed, which
    with thousands of table rows costs more than the repaint itself. One line of the same width,
    which fits the widget without wrapping, takes the same space.
    """
    current = static.content
    if not isinstance(current, Text) or "\n" in current.plain or "\n" in text.plain:
        return True
    return current.cell_len != text.cell_len or text.cell_len > static.content_region.width
