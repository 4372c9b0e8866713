"""Textual messages that carry the agent's events and the console's own background work into the app."""

from __future__ import annotations

from datetime import datetime

from textual.message import Message


class AgentEventsPending(Message):
    """Agent events are waiting in the app's buffer.

    The bus may publish hundreds of events a second, so the app posts this
    message once per batch rather than once per event, and a later copy
    replaces an earlier one that is still queued.
    """

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AgentEventsPending)


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
