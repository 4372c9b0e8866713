"""Fault injection: wrong status codes, slow replies and malformed poll bodies on demand.

Faults are for testing the agent against a misbehaving hub. They are set from
Python (`store.faults`) or through `POST /admin/faults`, and they are thread-safe
because tests set them while the hub serves requests in its own thread.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from console.hub.models import Endpoint

ALL_ENDPOINTS = "*"

VALID_ENDPOINT_NAMES = frozenset({*(endpoint.value for endpoint in Endpoint), ALL_ENDPOINTS})


class MalformedKind(enum.StrEnum):
    """Ways a poll reply can be broken."""

    NOT_JSON = "not_json"
    TASKS_NOT_LIST = "tasks_not_list"
    TASK_MISSING_ID = "task_missing_id"
    TASK_MISSING_TASK_TYPE = "task_missing_task_type"
    OVERSIZED = "oversized"


@dataclass(frozen=True)
class StatusFault:
    """A reply to send instead of the real one.

    `body` is sent as JSON; `text`, when set, is sent as text/plain instead.
    `retry_after` becomes the Retry-After header verbatim: seconds or an HTTP date.
    """

    status: int
    body: Any = None
    text: str | None = None
    retry_after: str | None = None

    def json_body(self) -> Any:
        """Return the JSON body to send, `{"detail": <reason phrase>}` unless one was given."""
        if self.body is not None:
            return self.body
        if self.status == 500:
            return {"detail": "Internal server error"}
        return {"detail": _reason_phrase(self.status)}


@dataclass(frozen=True)
class MalformedFault:
    """A broken poll body to send; `size_bytes` applies to the oversized kind only."""

    kind: MalformedKind
    size_bytes: int = 0


@dataclass
class _Pending:
    """A fault and the number of requests it still applies to."""

    fault: Any
    remaining: int


class FaultInjector:
    """Per-endpoint faults that the API routes check before they respond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status_faults: dict[str, deque[_Pending]] = {}
        self._delays: dict[str, float] = {}
        self._malformed: deque[_Pending] = deque()

    def fail_next(
        self,
        endpoint: str,
        status: int,
        count: int = 1,
        *,
        body: Any = None,
        text: str | None = None,
        retry_after: int | float | str | None = None,
    ) -> None:
        """Respond to the next `count` requests to `endpoint` (or `*` for all) with `status`.

        Several calls for one endpoint queue up in order.
        """
        endpoint = _check_endpoint(endpoint)
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code from 200 to 599, got {status!r}")
        _check_count(count)
        header = None if retry_after is None else _format_retry_after(retry_after)
        fault = StatusFault(status=status, body=body, text=text, retry_after=header)

        with self._lock:
            self._status_faults.setdefault(endpoint, deque()).append(_Pending(fault, count))

    def set_delay(self, endpoint: str, seconds: float) -> None:
        """Delay every request to `endpoint` (or `*`) by `seconds`; 0 removes the delay."""
        endpoint = _check_endpoint(endpoint)
        if seconds < 0:
            raise ValueError(f"delay must be 0 or more seconds, got {seconds}")

        with self._lock:
            if seconds == 0:
                self._delays.pop(endpoint, None)
            else:
                self._delays[endpoint] = float(seconds)

    def malform_next(self, kind: MalformedKind | str, count: int = 1, *, size_bytes: int = 2_000_000) -> None:
        """Send a broken body of `kind` in reply to the next `count` successful polls."""
        if kind not in MalformedKind.__members__.values():
            expected = ", ".join(member.value for member in MalformedKind)
            raise ValueError(f"unknown malformed body kind {kind!r}: expected one of {expected}")
        kind = MalformedKind(kind)
        _check_count(count)
        if kind is MalformedKind.OVERSIZED and size_bytes < 1:
            raise ValueError(f"size_bytes must be positive, got {size_bytes}")
        fault = MalformedFault(kind=kind, size_bytes=size_bytes if kind is MalformedKind.OVERSIZED else 0)

        with self._lock:
            self._malformed.append(_Pending(fault, count))

    def clear(self, endpoint: str | None = None) -> None:
        """Remove every fault, or only those set for `endpoint` (malformed bodies count as `pending`)."""
        with self._lock:
            if endpoint is None:
                self._status_faults.clear()
                self._delays.clear()
                self._malformed.clear()
                return

            endpoint = _check_endpoint(endpoint)
            self._status_faults.pop(endpoint, None)
            self._delays.pop(endpoint, None)
            if endpoint == Endpoint.PENDING:
                self._malformed.clear()

    def delay_for(self, endpoint: Endpoint) -> float:
        """Return the delay for `endpoint`: its own when set, else the `*` delay, else 0."""
        with self._lock:
            return self._delays.get(endpoint.value, self._delays.get(ALL_ENDPOINTS, 0.0))

    def take_status_fault(self, endpoint: Endpoint) -> StatusFault | None:
        """Consume one use of the next status fault for `endpoint`, its own before `*`."""
        with self._lock:
            for name in (endpoint.value, ALL_ENDPOINTS):
                fault = _take(self._status_faults.get(name))
                if fault is not None:
                    return fault
        return None

    def take_malformed(self) -> MalformedFault | None:
        """Consume one use of the next malformed-body fault."""
        with self._lock:
            return _take(self._malformed)

    def snapshot(self) -> dict[str, Any]:
        """Return the active faults as JSON-ready data."""
        with self._lock:
            status = {
                name: [
                    {
                        "status": item.fault.status,
                        "remaining": item.remaining,
                        "body": item.fault.body,
                        "text": item.fault.text,
                        "retry_after": item.fault.retry_after,
                    }
                    for item in queue
                ]
                for name, queue in self._status_faults.items()
                if queue
            }
            malformed = [
                {"kind": item.fault.kind.value, "remaining": item.remaining, "size_bytes": item.fault.size_bytes}
                for item in self._malformed
            ]
            return {"status": status, "delays": dict(self._delays), "malformed": malformed}


def _take(queue: deque[_Pending] | None) -> Any:
    """Use the first fault in `queue` once, dropping it when it is used up."""
    if not queue:
        return None
    head = queue[0]
    head.remaining -= 1
    if head.remaining <= 0:
        queue.popleft()
    return head.fault


def _check_endpoint(endpoint: str) -> str:
    name = str(endpoint)
    if name not in VALID_ENDPOINT_NAMES:
        expected = ", ".join(sorted(VALID_ENDPOINT_NAMES))
        raise ValueError(f"unknown endpoint {endpoint!r}: expected one of {expected}")
    return name


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")


def _format_retry_after(value: int | float | str) -> str:
    """Render a Retry-After value: a number of seconds, or text such as an HTTP date."""
    if isinstance(value, bool):
        raise ValueError("retry_after must be seconds or an HTTP date, got a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"retry_after must be 0 or more seconds, got {value}")
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
