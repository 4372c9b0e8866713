"""Records of every API request the embedded hub received and the status it responded with."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from console.hub.models import Endpoint, jsonable


@dataclass(frozen=True)
class RequestRecord:
    """One API request and the status code of the response."""

    time: datetime
    endpoint: Endpoint
    method: str
    path: str
    status: int
    trust_id: str | None

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class HeartbeatRecord:
    """One heartbeat request; `body` is the decoded JSON, raw text, or None when empty."""

    time: datetime
    trust_id: str | None
    body: Any
    status: int

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class ResultRecord:
    """One `POST /tasks/{task_id}/result` request, whatever the response status."""

    time: datetime
    task_id: str
    trust_id: str | None
    body: Any
    status: int

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class CohortRecord:
    """One `POST /cohort/results` request, whatever the response status."""

    time: datetime
    trust_id: str | None
    body: Any
    status: int

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


class RecordLog:
    """Thread-safe logs of requests, heartbeats, results and cohort results.

    `trust_id` is None in a record when the request carried no valid key or was
    given an injected fault response before the key was checked.
    """

    def __init__(self, changed: threading.Condition, clock: Callable[[], datetime], max_records: int) -> None:
        # The store's condition: each new record wakes the threads in HubStore.wait_for.
        self._changed = changed
        self._clock = clock

        # Each log keeps the newest `max_records` entries, but the counts stay exact.
        self._request_counts: Counter[tuple[Endpoint, int]] = Counter()
        self._requests: deque[RequestRecord] = deque(maxlen=max_records)
        self._heartbeats: deque[HeartbeatRecord] = deque(maxlen=max_records)
        self._results: deque[ResultRecord] = deque(maxlen=max_records)
        self._cohort_results: deque[CohortRecord] = deque(maxlen=max_records)
        self._last_heartbeat: dict[str, datetime] = {}

    def record_request(self, endpoint: Endpoint, method: str, path: str, status: int, trust_id: str | None) -> None:
        with self._changed:
            self._requests.append(RequestRecord(self._clock(), endpoint, method, path, status, trust_id))
            self._request_counts[(endpoint, status)] += 1
            self._changed.notify_all()

    def record_heartbeat(self, trust_id: str | None, body: Any, status: int) -> None:
        with self._changed:
            now = self._clock()
            self._heartbeats.append(HeartbeatRecord(now, trust_id, body, status))
            if status == 200 and trust_id is not None:
                self._last_heartbeat[trust_id] = now
            self._changed.notify_all()

    def record_result(self, task_id: str, trust_id: str | None, body: Any, status: int) -> None:
        with self._changed:
            self._results.append(ResultRecord(self._clock(), task_id, trust_id, body, status))
            self._changed.notify_all()

    def record_cohort_results(self, trust_id: str | None, body: Any, status: int) -> None:
        with self._changed:
            self._cohort_results.append(CohortRecord(self._clock(), trust_id, body, status))
            self._changed.notify_all()

    def requests(self, endpoint: Endpoint | str | None = None) -> list[RequestRecord]:
        with self._changed:
            return [record for record in self._requests if endpoint is None or record.endpoint == endpoint]

    def request_counts(self) -> dict[str, dict[int, int]]:
        """Return the number of requests per endpoint name and status code."""
        counts: dict[str, dict[int, int]] = {}
        with self._changed:
            for (endpoint, status), number in sorted(self._request_counts.items()):
                counts.setdefault(endpoint.value, {})[status] = number
        return counts

    def count_requests(self, endpoint: Endpoint | str, status: int | None = None) -> int:
        """Return how many requests `endpoint` received, optionally only those with response `status`."""
        with self._changed:
            return sum(
                number
                for (name, code), number in self._request_counts.items()
                if name == endpoint and (status is None or code == status)
            )

    def heartbeats(self) -> list[HeartbeatRecord]:
        with self._changed:
            return list(self._heartbeats)

    def results(self) -> list[ResultRecord]:
        with self._changed:
            return list(self._results)

    def cohort_results(self) -> list[CohortRecord]:
        with self._changed:
            return list(self._cohort_results)

    def last_heartbeat_at(self, trust_id: str) -> datetime | None:
        """Return the time of the trust's last heartbeat with response status 200."""
        with self._changed:
            return self._last_heartbeat.get(trust_id)

    def clear(self) -> None:
        """Forget every record, including the last-heartbeat times."""
        with self._changed:
            self._request_counts.clear()
            self._requests.clear()
            self._heartbeats.clear()
            self._results.clear()
            self._cohort_results.clear()
            self._last_heartbeat.clear()
