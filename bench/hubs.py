"""The embedded hub each benchmark runs against, and waits on what it records."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from console.hub import EmbeddedHub, HubStore, RateLimits

API_KEY = "bench-trust-key-6f1c2a9e4b7d"
TRUST_NAME = "Bench Trust"

WAIT_INTERVAL_SECONDS = 0.05
"""How often the benchmark checks the hub's records while it waits.

Checking on a timer instead of on every record leaves the hub's thread the
GIL; the figures come from the records' own timestamps, so the check's pace
does not change them.
"""


@contextlib.contextmanager
def embedded_hub() -> Iterator[EmbeddedHub]:
    """Serve a new hub with one trust and no rate limits on a free port of 127.0.0.1."""
    hub = EmbeddedHub(HubStore(), api_key=API_KEY, trust_name=TRUST_NAME, rate_limits=RateLimits.off())
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Check `condition` every 50 ms until it is true or `timeout` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(WAIT_INTERVAL_SECONDS)
    return True


def accepted_results(hub: EmbeddedHub) -> int:
    """Count the results the hub recorded with status 200."""
    return hub.store.records.count_requests("result", 200)


def heartbeat_times(hub: EmbeddedHub) -> list[float]:
    """Return the POSIX times of the heartbeats the hub accepted, in order."""
    return [record.time.timestamp() for record in hub.store.records.heartbeats() if record.status == 200]


def seconds(moment: datetime) -> float:
    return moment.timestamp()
