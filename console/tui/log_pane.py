"""The log pane: a line per agent event and per agent warning, keeping only the latest lines."""

from __future__ import annotations

import logging
from datetime import datetime

from rich.text import Text
from textual.widgets import RichLog

from console.event_log import describe_event
from console.events import AgentEvent

from .formatting import format_clock
from .text import literal

MAX_LOG_LINES = 1000

MAX_LINE_CHARS = 500

LEVEL_STYLES = {
    logging.DEBUG: "dim",
    logging.INFO: "",
    logging.WARNING: "yellow",
    logging.ERROR: "bold red",
}


def event_line(event: AgentEvent) -> Text | None:
    """Return the log pane's line for `event`, or None for events too frequent to log.

    The words come from `console.event_log`, so the console and the headless
    log use the same words. Hub text in them is shown literally, never as markup.
    """
    described = describe_event(event)
    if described is None:
        return None
    level, message = described
    line = Text(format_clock(event.at) + " ", style="dim", end="")
    line.append_text(literal(message, style=LEVEL_STYLES.get(level, ""), max_chars=MAX_LINE_CHARS))
    return line


def record_line(level: int, text: str, at: datetime) -> Text:
    """Return the log pane's line for a log record that no event carries."""
    line = Text(format_clock(at) + " ", style="dim", end="")
    line.append(logging.getLevelName(level) + " ", style=LEVEL_STYLES.get(level, "bold red"))
    line.append_text(literal(text, style=LEVEL_STYLES.get(level, "bold red"), max_chars=MAX_LINE_CHARS))
    return line


class EventLog(RichLog):
    """A bounded log of agent events and warnings; the oldest lines drop off the top."""

    def __init__(self, *, id: str | None = None, max_lines: int = MAX_LOG_LINES) -> None:
        super().__init__(id=id, max_lines=max_lines, wrap=True, markup=False, highlight=False)
        self._pending: list[Text] = []

    def add_event(self, event: AgentEvent) -> None:
        """Queue the event's line for the next `write_pending`, unless the shared event log leaves it out.

        The app writes the queued lines in its flush, so they appear in the same repaint as the
        table rows the same events changed.
        """
        line = event_line(event)
        if line is not None:
            self._pending.append(line)

    def add_record(self, level: int, text: str, at: datetime) -> None:
        """Write a log record's line."""
        self._pending.append(record_line(level, text, at))
        self.call_later(self.write_pending)

    def write_pending(self) -> None:
        """Write the queued lines in one go.

        Each write changes the log's height, and Textual lays out the whole screen
        after each such change, so lines queued together are written together.
        """
        lines, self._pending = self._pending, []
        if not lines:
            return
        # Wrap to the pane's width: left to itself, RichLog measures against the app console's width.
        width = self.scrollable_content_region.width
        self.write(Text("\n", end="").join(lines), width=width if width > 0 else None)
