"""Per-key rate limits on the hub's API endpoints, with FLIP's limits as defaults."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from console.hub.models import Endpoint


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per key in each sliding window; None turns one limit off."""

    pending: int | None = 30
    heartbeat: int | None = 30
    result: int | None = 60
    cohort: int | None = None
    window_seconds: float = 60.0
    enabled: bool = True
    send_retry_after: bool = True

    @classmethod
    def off(cls) -> RateLimits:
        """Return limits that never reject a request."""
        return cls(enabled=False)

    def limit_for(self, endpoint: Endpoint) -> int | None:
        """Return the number of requests allowed per window for `endpoint`, or None."""
        if not self.enabled:
            return None
        return getattr(self, endpoint.value)

    def with_changes(self, **changes: object) -> RateLimits:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


class RateLimiter:
    """A sliding-window log of accepted requests per API key and endpoint.

    Rejected requests do not enter the log, so a client that keeps retrying
    early is let through as soon as the oldest accepted request leaves the window.
    """

    def __init__(self, limits: RateLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._limits = limits if limits is not None else RateLimits()
        self._clock = clock
        self._accepted: dict[tuple[str, Endpoint], deque[float]] = {}

    @property
    def limits(self) -> RateLimits:
        """The limits in force."""
        with self._lock:
            return self._limits

    @limits.setter
    def limits(self, limits: RateLimits) -> None:
        with self._lock:
            self._limits = limits
            self._accepted.clear()

    def reset(self) -> None:
        """Forget every request seen so far."""
        with self._lock:
            self._accepted.clear()

    def check(self, api_key: str, endpoint: Endpoint) -> float | None:
        """Count one request; return None when allowed, else the seconds until a slot frees."""
        with self._lock:
            limit = self._limits.limit_for(endpoint)
            if limit is None:
                return None

            now = self._clock()
            window = self._limits.window_seconds
            accepted = self._accepted.setdefault((api_key, endpoint), deque())
            while accepted and accepted[0] <= now - window:
                accepted.popleft()

            if len(accepted) >= limit:
                if not accepted:
                    return window
                return max(accepted[0] + window - now, 0.0)

            accepted.append(now)
            return None


def retry_after_header(seconds: float) -> str:
    """Render a wait as whole seconds for the Retry-After header, at least 1."""
    return str(max(1, math.ceil(seconds)))
