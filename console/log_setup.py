"""Headless log output: text or JSON lines on stderr, escaped, with repeats counted.

Each agent event is logged with `extra` fields (event, task_id, task_type,
attempt) so the JSON format carries them as keys and text lines name them in
the message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from .text import printable

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STRUCTURED_FIELDS = ("event", "task_id", "task_type", "attempt", "status_code")

REPEAT_WINDOW_SECONDS = 60.0
"""Identical warnings and errors within this window are counted instead of logged again."""

_NUMBERS = re.compile(r"\d+(\.\d+)?")


class PrintableFormatter(logging.Formatter):
    """Format records with control characters escaped, so text from the hub cannot forge lines or escapes."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the structured fields present."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # With ensure_ascii, json.dumps escapes every character outside ASCII, controls and
        # bidirectional overrides among them, so hub text can neither break the line nor hide in it.
        return json.dumps(line)


class RepeatFilter(logging.Filter):
    """Count hub-wide warnings and errors that repeat (numbers aside) within a window instead of logging each.

    The first of a kind is logged; its repeats within the window are dropped
    and counted, and the next one logged after the window states how many were
    dropped. A hub that stays down thus fills the log with counts rather than
    thousands of lines.
    """

    MAX_KINDS = 256

    def __init__(self, window_seconds: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self._clock = clock
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        # A task's own lines (each report retry, each failure) are few and always logged in full.
        if record.levelno < logging.WARNING or getattr(record, "task_id", None) is not None:
            return True
        key = (record.name, record.levelno, _NUMBERS.sub("N", record.getMessage()))
        now = self._clock()
        seen = self._seen.get(key)

        if seen is not None and now - seen[0] < self.window_seconds:
            seen[1] += 1
            return False

        dropped = int(seen[1]) if seen is not None else 0
        if dropped:
            record.msg = f"{record.getMessage()} (repeated {dropped} more time(s) in the last {self.window_seconds:g} s)"
            record.args = None
        if len(self._seen) >= self.MAX_KINDS:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def configure_logging(log_format: str = "text", level: str | int = logging.INFO) -> None:
    """Send every log line to stderr; httpx's per-request lines only at warning and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PrintableFormatter(TEXT_FORMAT))
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)

    # No format here shows the caller, thread or process, so records skip collecting them. These
    # module switches are described in the comments of the standard library's logging/__init__.py.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
