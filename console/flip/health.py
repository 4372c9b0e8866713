"""The health snapshot sent with heartbeats: trust-console itself and the `/health` of its local services.

Every HEALTH_COLLECT_INTERVAL_SECONDS a round probes each service at once,
each probe under its own timeout and the whole round under a deadline.
A snapshot is sent only while it is fresh: `snapshot()` returns it until the
next round should have replaced it (the interval plus the round deadline),
and returns None as soon as a round fails or overruns. Between rounds every
heartbeat carries the same fresh snapshot, as FLIP's trust does, but stale
data is never sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

import httpx

from .. import __version__

log = logging.getLogger(__name__)

ServiceStatus = Literal["healthy", "degraded", "down", "unknown"]

OWN_SERVICE_NAME = "trust-console"
PROBE_TIMEOUT_SECONDS = 5.0
ROUND_TIMEOUT_SECONDS = 15.0
"""FLIP's trust uses the same two limits: 5 s per probe, 15 s per round."""

DEGRADED_AFTER_MS = 1000
"""A probe slower than this reports its service as degraded."""

MAX_SERVICES = 16
SERVICE_NAME = re.compile(r"[a-z0-9-]{1,32}")
MAX_VERSION_CHARS = 64
MAX_RESPONSE_MS = 1_000_000


def service_entry(status: ServiceStatus, version: str | None = None, response_ms: int | None = None) -> dict[str, Any]:
    """Build one snapshot entry, with the version and response time cut to the hub's bounds."""
    return {
        "status": status,
        "version": version[:MAX_VERSION_CHARS] if version is not None else None,
        "response_ms": min(max(response_ms, 0), MAX_RESPONSE_MS) if response_ms is not None else None,
    }


class HealthCollector:
    """Probes the local services on a schedule and keeps the latest snapshot while it is fresh.

    It implements the agent's HealthSource: `snapshot()` for each heartbeat,
    and `run()` to collect until cancelled.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        services: Mapping[str, str],
        *,
        interval_seconds: float,
        probe_timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
        round_timeout_seconds: float = ROUND_TIMEOUT_SECONDS,
        version: str = __version__,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Probe `services`, a map of snapshot names to base URLs, each at `{base URL}/health`."""
        names = [OWN_SERVICE_NAME, *services]
        if len(names) > MAX_SERVICES or len(set(names)) != len(names):
            raise ValueError(f"a snapshot must contain 1 to {MAX_SERVICES} distinct services, got {names}")
        for name in names:
            if not SERVICE_NAME.fullmatch(name):
                raise ValueError(f"service name {name!r} does not match ^[a-z0-9-]{{1,32}}$")

        self._http = http
        self._health_urls = {name: f"{url.rstrip('/')}/health" for name, url in services.items()}
        self.interval_seconds = interval_seconds
        self.probe_timeout_seconds = probe_timeout_seconds
        self.round_timeout_seconds = round_timeout_seconds
        self._version = version
        self._clock = clock
        self._latest: dict[str, Any] | None = None
        self._latest_at = 0.0
        self._statuses: dict[str, ServiceStatus] = {}

    @property
    def fresh_for_seconds(self) -> float:
        """How long a snapshot is sent after its round: until the next round should have replaced it."""
        return self.interval_seconds + self.round_timeout_seconds

    def snapshot(self) -> dict[str, Any] | None:
        """Return the latest snapshot while it is fresh, else None so the heartbeat goes without one."""
        if self._latest is None:
            return None
        if self._clock() - self._latest_at > self.fresh_for_seconds:
            return None
        return self._latest

    async def run(self) -> None:
        """Collect a snapshot now and then every interval, until cancelled."""
        log.info(
            "health collector started: probing %s every %g s",
            ", ".join(self._health_urls) or "nothing",
            self.interval_seconds,
        )
        try:
            while True:
                started = self._clock()
                await self.collect_round()
                elapsed = self._clock() - started
                await asyncio.sleep(max(self.interval_seconds - elapsed, 0.0))
        finally:
            self._latest = None

    async def collect_round(self) -> dict[str, Any] | None:
        """Run one round and keep its snapshot; on failure or overrun drop the snapshot and return None."""
        try:
            async with asyncio.timeout(self.round_timeout_seconds):
                snapshot = await self._collect()
        except TimeoutError:
            log.warning(
                "health round timed out after %g s; heartbeats go without a snapshot until a round succeeds",
                self.round_timeout_seconds,
            )
            self._latest = None
            return None
        except Exception:
            log.exception("health round failed; heartbeats go without a snapshot until a round succeeds")
            self._latest = None
            return None

        self._latest = snapshot
        self._latest_at = self._clock()
        return snapshot

    async def _collect(self) -> dict[str, Any]:
        names = list(self._health_urls)
        probes = [self._probe(name, self._health_urls[name]) for name in names]
        results = await asyncio.gather(*probes, return_exceptions=True)

        services = {OWN_SERVICE_NAME: service_entry("healthy", self._version)}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.error("health probe of %s raised %s: %s", name, type(result).__name__, result)
                result = service_entry("unknown")
            services[name] = result
            self._note_status(name, result["status"])
        return {"services": services, "collected_at": datetime.now(timezone.utc).isoformat()}

    async def _probe(self, name: str, url: str) -> dict[str, Any]:
        """GET a service's `/health`: down on an error or non-2xx, degraded when slow or its reply has "status": "degraded"."""
        started = self._clock()
        try:
            response = await self._http.get(url, timeout=self.probe_timeout_seconds)
        except httpx.RequestError as error:
            log.debug("health probe of %s failed: %s", name, type(error).__name__)
            return service_entry("down")
        response_ms = int((self._clock() - started) * 1000)
        if not response.is_success:
            log.debug("health probe of %s returned %d", name, response.status_code)
            return service_entry("down")

        body = _json_object(response)
        version = body.get("version")
        version = version if isinstance(version, str) else None
        says_degraded = body.get("status") == "degraded"
        status: ServiceStatus = "degraded" if says_degraded or response_ms > DEGRADED_AFTER_MS else "healthy"
        return service_entry(status, version, response_ms)

    def _note_status(self, name: str, status: ServiceStatus) -> None:
        """Log a service's status when it changes, so a service that stays down logs once."""
        previous = self._statuses.get(name)
        if status == previous:
            return
        self._statuses[name] = status
        level = logging.INFO if status == "healthy" else logging.WARNING
        log.log(level, "%s is %s%s", name, status, f" (was {previous})" if previous else "")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
