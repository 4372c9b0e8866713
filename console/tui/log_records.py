"""Forward the agent's own warnings and errors, those that no event carries, to the log pane."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timezone

from textual.app import App

from .messages import LogRecordPosted

AGENT_LOGGER = "console"

EXCLUDED_LOGGERS = ("console.events", "console.hub")
"""The event log repeats what the pane already shows, and the embedded hub's logs are the hub's, not this trust's."""


class LogPaneHandler(logging.Handler):
    """A logging handler that posts WARNING and above from the agent's loggers to the console.

    Records logged on another thread reach the app through its event loop,
    because Textual's message queues are not thread-safe.
    """

    def __init__(self, app: App[object], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self.app = app
        self.loop = loop
        self.thread_id = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(EXCLUDED_LOGGERS):
            return
        try:
            text = record.getMessage()
        except Exception:
            self.handleError(record)
            return
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text = f"{text}: {type(error).__name__}: {error}"

        at = datetime.fromtimestamp(record.created, timezone.utc)
        message = LogRecordPosted(level=record.levelno, logger=record.name, text=text, at=at)
        if threading.get_ident() == self.thread_id:
            self.app.post_message(message)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.app.post_message, message)


def install_log_handler(app: App[object]) -> LogPaneHandler:
    """Attach a LogPaneHandler to the agent's logger; call from the app's event loop."""
    handler = LogPaneHandler(app, asyncio.get_running_loop())
    logging.getLogger(AGENT_LOGGER).addHandler(handler)
    return handler


def remove_log_handler(handler: LogPaneHandler) -> None:
    logging.getLogger(AGENT_LOGGER).removeHandler(handler)
