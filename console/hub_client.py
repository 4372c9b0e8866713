"""The client for the hub's three trust endpoints, on one httpx.AsyncClient.

Every request goes from the trust to the hub. Each reply is checked before
use. Each way a request can fail becomes one exception type, so the loops
decide from the type alone whether to retry later, wait for Retry-After, stop
resending, or report the key as wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .settings import Settings

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 16 * 1024 * 1024
"""Largest reply body read from the hub; a poll returns at most 50 tasks."""

MAX_RETRY_AFTER_SECONDS = 3600.0

REQUEST_DEADLINE_FACTOR = 3
"""A whole request, reply included, may take this many times HTTP_TIMEOUT_SECONDS."""

MAX_TASK_TYPE_CHARS = 100

KEEPALIVE_EXPIRY_SECONDS = 4.0
"""Idle connections are dropped before 5 s, the keep-alive timeout of uvicorn and many proxies.

Reusing a connection the server is closing at the same moment fails with
"Server disconnected"; with a 5 s heartbeat both timers would meet.
"""

POLL = "pending"
RESULT = "result"
HEARTBEAT = "heartbeat"


class HubError(Exception):
    """A request to the hub failed; `status_code` is None for transport errors."""

    def __init__(self, endpoint: str, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status_code = status_code


class HubUnavailable(HubError):
    """The hub could not be reached, timed out or returned 5xx; retry later."""


class RateLimited(HubError):
    """The hub returned 429; `retry_after_seconds` is its Retry-After, when sent."""

    def __init__(self, endpoint: str, message: str, retry_after_seconds: float | None) -> None:
        super().__init__(endpoint, message, 429)
        self.retry_after_seconds = retry_after_seconds


class AuthFailed(HubError):
    """The hub rejected the API key (401, or 403 on a poll or heartbeat)."""


class ResultRejected(HubError):
    """The hub refused a result for good (403, 404, 409, 422); resending cannot succeed."""


class UnexpectedStatus(HubError):
    """The hub returned a status this endpoint does not define."""


class MalformedReply(HubError):
    """The hub's reply could not be used: not JSON, wrong shape, or too large."""


@dataclass(frozen=True)
class Identity:
    trust_id: str
    trust_name: str


@dataclass(frozen=True)
class PendingTask:
    id: str
    task_type: str
    payload: str
    created_at: str | None


@dataclass(frozen=True)
class InvalidTask:
    """A task entry from a poll that cannot be run; `task_id` is None when unusable."""

    task_id: str | None
    task_type: str | None
    reason: str


@dataclass(frozen=True)
class PollReply:
    identity: Identity
    tasks: list[PendingTask]
    invalid: list[InvalidTask]
    round_trip_seconds: float


@dataclass(frozen=True)
class HeartbeatReply:
    identity: Identity
    hub_version: str | None
    aes_key_fingerprint: str | None
    round_trip_seconds: float


@dataclass(frozen=True)
class ResultAccepted:
    identity: Identity | None
    status_code: int
    round_trip_seconds: float


def is_task_id(value: object) -> bool:
    """Check that a task id is a UUID, so it is safe to put in a URL path."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """Create the one client used for every hub request, with explicit timeouts."""
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=min(5.0, settings.http_timeout_seconds))
    # Certificates are always verified; HUB_CA_BUNDLE only adds a private authority to trust.
    verify: ssl.SSLContext | bool = True
    if settings.hub_ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(settings.hub_ca_bundle))
    return httpx.AsyncClient(
        timeout=timeout,
        verify=verify,
        # HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment apply (httpx's trust_env).
        trust_env=True,
        limits=httpx.Limits(
            max_connections=16, max_keepalive_connections=8, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS
        ),
        headers={settings.trust_api_key_header: settings.trust_api_key.get_secret_value()},
        follow_redirects=False,
    )


class HubClient:
    """Poll, heartbeat and result requests against `CENTRAL_HUB_API_URL`."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._http = http or build_http_client(settings)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def rebuild(self) -> None:
        """Replace the HTTP client, dropping every pooled connection."""
        old = self._http
        self._http = build_http_client(self._settings)
        await old.aclose()

    async def poll(self) -> PollReply:
        """Claim pending tasks; the hub marks each one IN_PROGRESS as it hands it out."""
        started = time.monotonic()
        body = await self._request(POLL, "GET", "/tasks/pending")
        round_trip = time.monotonic() - started

        identity = _parse_identity(POLL, body)
        raw_tasks = body.get("tasks")
        if not isinstance(raw_tasks, list):
            raise MalformedReply(POLL, f"'tasks' is {type(raw_tasks).__name__}, expected a list", 200)

        tasks: list[PendingTask] = []
        invalid: list[InvalidTask] = []
        for entry in raw_tasks:
            parsed = _parse_task(entry)
            if isinstance(parsed, InvalidTask):
                invalid.append(parsed)
            else:
                tasks.append(parsed)
        return PollReply(identity, tasks, invalid, round_trip)

    async def heartbeat(self, snapshot: dict[str, Any] | None = None) -> HeartbeatReply:
        started = time.monotonic()
        body = await self._request(HEARTBEAT, "POST", "/trust/heartbeat", json_body=snapshot)
        round_trip = time.monotonic() - started

        identity = _parse_identity(HEARTBEAT, body)
        hub_version = body.get("hub_version")
        fingerprint = body.get("aes_key_fingerprint")
        return HeartbeatReply(
            identity,
            hub_version if isinstance(hub_version, str) else None,
            fingerprint if isinstance(fingerprint, str) else None,
            round_trip,
        )

    async def send_result(self, task_id: str, success: bool, result: str | None) -> ResultAccepted:
        """Report a task's result; raises ResultRejected when resending cannot succeed."""
        if not is_task_id(task_id):
            raise ValueError(f"task id {task_id!r} is not a UUID")

        started = time.monotonic()
        body = await self._request(
            RESULT, "POST", f"/tasks/{task_id}/result", json_body={"success": success, "result": result}
        )
        round_trip = time.monotonic() - started
        try:
            identity = _parse_identity(RESULT, body)
        except MalformedReply as error:
            log.warning("result for task %s accepted, but %s", task_id, error)
            identity = None
        return ResultAccepted(identity, 200, round_trip)

    async def _request(
        self, endpoint: str, method: str, path: str, json_body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one request and return the reply's JSON object, or raise the matching HubError."""
        url = self._settings.hub_url(path)
        # httpx times each read; the deadline also ends a reply that trickles in a byte at a time.
        deadline = self._settings.http_timeout_seconds * REQUEST_DEADLINE_FACTOR
        try:
            async with asyncio.timeout(deadline):
                async with self._http.stream(method, url, json=json_body) as response:
                    content = await read_capped(endpoint, response)
        except TimeoutError:
            raise HubUnavailable(endpoint, f"request to {url} took longer than {deadline:g} s") from None
        except httpx.LocalProtocolError:
            # The message would quote the offending header value, which may be the API key.
            raise HubUnavailable(
                endpoint,
                "the request could not be built: TRUST_API_KEY or TRUST_API_KEY_HEADER contains characters not"
                " allowed in an HTTP header",
            ) from None
        except httpx.TimeoutException as error:
            raise HubUnavailable(endpoint, f"request to {url} timed out ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise HubUnavailable(
                endpoint, f"connection to {url} failed ({type(error).__name__}: {error})"
            ) from error

        status = response.status_code
        if status == 200 and endpoint == RESULT:
            # The hub recorded the result, so an unreadable reply is no reason to send it again.
            try:
                return _parse_json_object(endpoint, content)
            except MalformedReply:
                return {}
        if status == 200:
            return _parse_json_object(endpoint, content)

        detail = _detail(content)
        message = f"{endpoint} request got {status}" + (f": {detail}" if detail else "")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RateLimited(endpoint, message, retry_after)
        if status >= 500:
            raise HubUnavailable(endpoint, message, status)
        if status == 401:
            raise AuthFailed(endpoint, message, status)
        if endpoint == RESULT and status in (403, 404, 409, 422):
            raise ResultRejected(endpoint, detail or message, status)
        if status == 403:
            raise AuthFailed(endpoint, message, status)
        if status == 404:
            message += f" ({url}: check that CENTRAL_HUB_API_URL includes the API prefix, such as /api)"
        raise UnexpectedStatus(endpoint, message, status)


async def read_capped(endpoint: str, response: httpx.Response) -> bytes:
    """Read a reply body, raising MalformedReply once it passes MAX_REPLY_BYTES."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        raise MalformedReply(
            endpoint, f"reply of {int(declared)} bytes exceeds the {MAX_REPLY_BYTES}-byte limit", response.status_code
        )

    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise MalformedReply(
                endpoint, f"reply exceeds the {MAX_REPLY_BYTES}-byte limit", response.status_code
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json_object(endpoint: str, content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError as error:
        raise MalformedReply(endpoint, f"reply is not JSON ({error})", 200) from None
    except RecursionError:
        raise MalformedReply(endpoint, "reply is JSON nested too deeply to read", 200) from None
    if not isinstance(body, dict):
        raise MalformedReply(endpoint, f"reply is a JSON {type(body).__name__}, expected an object", 200)
    return body


def _detail(content: bytes) -> str | None:
    """Return the hub's `detail` from an error reply, shortened for logs."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        text = content[:200].decode("utf-8", errors="replace").strip()
        return text or None
    detail = body.get("detail") if isinstance(body, dict) else None
    if detail is None:
        return None
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return text[:500]


def _parse_identity(endpoint: str, body: dict[str, Any]) -> Identity:
    trust_id = body.get("trust_id")
    trust_name = body.get("trust_name")
    if not isinstance(trust_id, str) or not isinstance(trust_name, str):
        raise MalformedReply(endpoint, "reply has no identity block (trust_id and trust_name strings)", 200)
    return Identity(trust_id, trust_name)


def _parse_task(entry: object) -> PendingTask | InvalidTask:
    if not isinstance(entry, dict):
        return InvalidTask(None, None, f"task entry is a JSON {type(entry).__name__}, expected an object")

    task_id = entry.get("id")
    task_type = entry.get("task_type")
    shown_type = task_type[:MAX_TASK_TYPE_CHARS] if isinstance(task_type, str) else None
    if task_id is None:
        return InvalidTask(None, shown_type, "task has no 'id'")
    if not is_task_id(task_id):
        return InvalidTask(None, shown_type, f"task id {str(task_id)[:80]!r} is not a UUID")
    task_id = str(uuid.UUID(task_id))  # One spelling per task, so a repeat in upper case is still a repeat.
    if not isinstance(task_type, str) or not task_type:
        return InvalidTask(task_id, None, "task has no 'task_type' string")
    if len(task_type) > MAX_TASK_TYPE_CHARS:
        return InvalidTask(task_id, None, f"task_type is {len(task_type)} characters long; at most {MAX_TASK_TYPE_CHARS}")

    payload = entry.get("payload")
    if not isinstance(payload, str):
        return InvalidTask(task_id, task_type, f"'payload' is {type(payload).__name__}, expected a string")
    created_at = entry.get("created_at")
    return PendingTask(task_id, task_type, payload, created_at if isinstance(created_at, str) else None)
