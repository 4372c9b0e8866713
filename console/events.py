"""Events the agent publishes, and the bus that delivers them.

The console and the headless logger are both plain subscribers, so everything
an operator sees comes from these events and from the agent's task records.
Nothing here imports Textual.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Connectivity(enum.StrEnum):
    """State of the agent's connection to the hub."""

    CONNECTING = "connecting"
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    AUTH_FAILED = "auth failed"
    STOPPED = "stopped"


@dataclass(frozen=True, kw_only=True)
class AgentEvent:
    """Base of every event; `at` is the wall-clock time it was published."""

    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, kw_only=True)
class TaskEvent(AgentEvent):
    task_id: str
    task_type: str


@dataclass(frozen=True, kw_only=True)
class TaskReceived(TaskEvent):
    """The hub handed out a task, which now waits for a handler slot."""


@dataclass(frozen=True, kw_only=True)
class TaskStarted(TaskEvent):
    """A handler started on the task."""


@dataclass(frozen=True, kw_only=True)
class TaskFinished(TaskEvent):
    """The handler returned; `error` is set when the result is a failure."""

    success: bool
    duration_seconds: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskReported(TaskEvent):
    """The hub accepted the task's result."""

    attempts: int
    status_code: int
    success: bool | None = None
    """Whether the result delivered is a success; None when not known."""
    duration_seconds: float | None = None
    """How long the handler ran."""


@dataclass(frozen=True, kw_only=True)
class ReportFailed(TaskEvent):
    """A report attempt failed.

    `final` is true when the hub's reply means resending cannot succeed
    (403, 404, 409, 422); otherwise the agent retries after `retry_in_seconds`.
    """

    attempt: int
    error: str
    status_code: int | None = None
    final: bool = False
    retry_in_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ReportStuck(TaskEvent):
    """A result is still undelivered after REPORT_STUCK_AFTER_SECONDS; retries go on."""

    undelivered_seconds: float


@dataclass(frozen=True, kw_only=True)
class TaskUpdated(TaskEvent):
    """A task's record changed in the ledger, as read by a console attached from another process."""


@dataclass(frozen=True, kw_only=True)
class TaskSkipped(TaskEvent):
    """A task from the hub was not run, for the reason given (for example a duplicate)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class HeartbeatOk(AgentEvent):
    round_trip_seconds: float
    status_code: int = 200


@dataclass(frozen=True, kw_only=True)
class HeartbeatFailed(AgentEvent):
    error: str
    status_code: int | None = None
    retry_in_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class PollCompleted(AgentEvent):
    task_count: int
    round_trip_seconds: float
    status_code: int = 200


@dataclass(frozen=True, kw_only=True)
class PollFailed(AgentEvent):
    error: str
    status_code: int | None = None
    retry_in_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class PollScheduled(AgentEvent):
    """The poll loop will next ask for tasks at `next_poll_at` (wall clock)."""

    next_poll_at: datetime


@dataclass(frozen=True, kw_only=True)
class MalformedReply(AgentEvent):
    """The hub sent a reply the agent could not use; the loop goes on."""

    endpoint: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ConnectivityChanged(AgentEvent):
    previous: Connectivity
    current: Connectivity
    reason: str


@dataclass(frozen=True, kw_only=True)
class IdentityConfirmed(AgentEvent):
    """The first successful reply named the trust this key belongs to."""

    trust_id: str
    trust_name: str


@dataclass(frozen=True, kw_only=True)
class IdentityMismatch(AgentEvent):
    """The hub's trust id differs from EXPECTED_TRUST_ID; the agent stops."""

    expected_trust_id: str
    trust_id: str
    trust_name: str


@dataclass(frozen=True, kw_only=True)
class Paused(AgentEvent):
    """Polling is paused; heartbeats, handlers and reports go on."""


@dataclass(frozen=True, kw_only=True)
class Resumed(AgentEvent):
    """Polling resumed."""


@dataclass(frozen=True, kw_only=True)
class DrainStarted(AgentEvent):
    """The agent stopped claiming tasks and waits for in-flight ones."""

    in_flight: int
    timeout_seconds: float


@dataclass(frozen=True, kw_only=True)
class AgentStopped(AgentEvent):
    reason: str


@dataclass(frozen=True)
class HubReply:
    """One reply from the hub, or its absence, as an event reports it."""

    endpoint: str
    """"heartbeat", "poll" or "report"."""
    status_code: int | None
    """None when no reply arrived (timeout, refused connection)."""
    retry_in_seconds: float | None = None


def hub_reply(event: AgentEvent) -> HubReply | None:
    """Return the hub reply an event reports, or None for events about something else."""
    match event:
        case HeartbeatOk(status_code=status):
            return HubReply("heartbeat", status)
        case HeartbeatFailed(status_code=status, retry_in_seconds=wait):
            return HubReply("heartbeat", status, wait)
        case PollCompleted(status_code=status):
            return HubReply("poll", status)
        case PollFailed(status_code=status, retry_in_seconds=wait):
            return HubReply("poll", status, wait)
        case TaskReported(status_code=status):
            return HubReply("report", status)
        case ReportFailed(status_code=status, retry_in_seconds=wait):
            return HubReply("report", status, wait)
    return None


Subscriber = Callable[[AgentEvent], None]


class EventBus:
    """Synchronous fan-out of agent events to subscribers.

    Subscribers run on the agent's event loop and must not block. A subscriber
    that raises is logged and kept, so one faulty view cannot stop the agent.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber and return a function that removes it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: AgentEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, type(event).__name__)
