"""Textual messages that carry the agent's events into the console."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message

from console.events import AgentEvent


class AgentEventPosted(Message):
    """An agent event, posted from the event bus so an `@on` handler can update the screen."""

    def __init__(self, event: AgentEvent) -> None:
        super().__init__()
        self.event = event


class DrainFinished(Message):
    """The agent finished its in-flight tasks, or gave up after its drain timeout, and stopped."""

    def __init__(self, delivered: bool) -> None:
        super().__init__()
        self.delivered = delivered


class LogRecordPosted(Message):
    """A warning or error the agent logged without an event, such as a failed ledger write."""

    def __init__(self, *, level: int, logger: str, text: str, at: datetime) -> None:
        super().__init__()
        self.level = level
        self.logger = logger
        self.text = text
        self.at = at
