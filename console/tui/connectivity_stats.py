"""Statistics of the hub's replies from the agent's events: round trips, status classes per endpoint, rate limits."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from console.events import AgentEvent, HeartbeatOk, hub_reply

MAX_ROUND_TRIPS = 60
"""Heartbeat round trips kept for the sparkline, newest last."""

ENDPOINTS = ("heartbeat", "poll", "report")
"""The hub endpoints the agent calls, as the connectivity view names them."""


class StatusClass(enum.Enum):
    """Group of hub replies in the connectivity view."""

    OK = "2xx"
    CLIENT_ERROR = "4xx"
    RATE_LIMITED = "429"
    SERVER_ERROR = "5xx"
    NO_REPLY = "no reply"


def classify(status_code: int | None) -> StatusClass:
    """Group a reply's status; None means the request got no reply at all (timeout, refused connection)."""
    if status_code is None:
        return StatusClass.NO_REPLY
    if status_code == 429:
        return StatusClass.RATE_LIMITED
    if 200 <= status_code < 300:
        return StatusClass.OK
    if 400 <= status_code < 500:
        return StatusClass.CLIENT_ERROR
    if status_code >= 500:
        return StatusClass.SERVER_ERROR
    return StatusClass.CLIENT_ERROR


@dataclass
class ConnectivityStats:
    """Counts and timings gathered from the agent's events since the console started."""

    round_trips: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_ROUND_TRIPS))
    counts: dict[str, dict[StatusClass, int]] = field(
        default_factory=lambda: {endpoint: dict.fromkeys(StatusClass, 0) for endpoint in ENDPOINTS}
    )
    rate_limited_until: datetime | None = None
    """When the hub's latest Retry-After on a 429 ends."""
    last_reply_at: datetime | None = None
    """When the hub last sent any reply, an error status included."""
    last_no_reply_at: datetime | None = None
    """When a request last got no reply at all."""

    def record(self, event: AgentEvent) -> bool:
        """Count one event; return False for events that carry nothing for this view."""
        reply = hub_reply(event)
        if reply is None:
            return False
        if isinstance(event, HeartbeatOk):
            self.round_trips.append(event.round_trip_seconds)
        self._count(reply.endpoint, reply.status_code, event.at, reply.retry_in_seconds)
        return True

    def _count(self, endpoint: str, status_code: int | None, at: datetime, wait: float | None = None) -> None:
        status_class = classify(status_code)
        self.counts[endpoint][status_class] += 1
        if status_class is StatusClass.NO_REPLY:
            self.last_no_reply_at = at
        else:
            self.last_reply_at = at
        if status_class is StatusClass.RATE_LIMITED and wait is not None:
            until = at + timedelta(seconds=wait)
            if self.rate_limited_until is None or until > self.rate_limited_until:
                self.rate_limited_until = until

    def rate_limit_remaining(self, now: datetime) -> float | None:
        """Seconds until the hub's rate limit ends, or None when it is not limiting this trust."""
        if self.rate_limited_until is None or self.rate_limited_until <= now:
            return None
        return (self.rate_limited_until - now).total_seconds()
