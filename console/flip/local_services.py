"""Requests to the trust's own services, data-access-api and imaging-api, on one shared client.

Every request carries TRUST_INTERNAL_SERVICE_KEY in its configured header.
Each way a request can fail becomes a TaskFailure whose message names the
service, the method and the route, never the payload's values. The failure
carries a status code only when the service replied with one.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import httpx

from ..handlers import TaskFailure
from ..settings import Settings

DEFAULT_TIMEOUT_SECONDS = 30.0
"""Timeout of a request without its own (FLIP's trust-api uses 30 s)."""

CONNECT_TIMEOUT_SECONDS = 5.0
MAX_REPLY_BYTES = 16 * 1024 * 1024
MAX_DETAIL_CHARS = 300
"""Characters of a service's error detail kept in a task's error message."""

MIN_MASKED_CHARS = 4
"""Shortest request value masked in an error detail; shorter ones would mask ordinary words."""

MASK = "<masked>"


class Service(enum.StrEnum):
    DATA_ACCESS_API = "data-access-api"
    IMAGING_API = "imaging-api"


@dataclass(frozen=True)
class LocalReply:
    status_code: int
    content: bytes

    def json(self, service: Service, route: str) -> Any:
        """Return the reply's JSON value; raise TaskFailure when it is not JSON."""
        try:
            return json.loads(self.content)
        except ValueError:
            raise TaskFailure(f"{service} replied to {route} with a body that is not JSON") from None


def build_local_http_client() -> httpx.AsyncClient:
    """Create the one client for requests to the trust's local services and their health probes."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        # A redirect would carry the internal service key to wherever it points.
        follow_redirects=False,
    )


class LocalServices:
    """Authenticated requests to data-access-api and imaging-api."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._http = http
        self._base_urls = {
            Service.DATA_ACCESS_API: settings.data_access_api_url.rstrip("/"),
            Service.IMAGING_API: settings.imaging_api_url.rstrip("/"),
        }
        key = settings.trust_internal_service_key
        self._headers = (
            {settings.trust_internal_service_key_header: key.get_secret_value()} if key is not None else None
        )

    def base_url(self, service: Service) -> str:
        return self._base_urls[service]

    async def request(
        self,
        service: Service,
        method: str,
        path: str,
        *,
        route: str,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        timeout_seconds: float | None = None,
        path_values: tuple[str, ...] = (),
    ) -> LocalReply:
        """Send one request and return a 2xx reply; raise TaskFailure for anything else.

        `path` is already percent-encoded, and `path_values` are the payload
        values in it. `route` names the endpoint in messages and logs without
        the payload's values, for example `DELETE /projects/{imaging_project_id}`.
        The error detail of a failed request is kept with every value the
        request carried masked, because the task's error message is logged.
        """
        if self._headers is None:
            raise TaskFailure(
                f"TRUST_INTERNAL_SERVICE_KEY is not set, so {service} would reject {route};"
                " set it to the key the trust's local services expect"
            )

        url = f"{self._base_urls[service]}{path}"
        timeout = httpx.Timeout(timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS) if timeout_seconds else None
        options: dict[str, Any] = {"params": params, "headers": self._headers}
        if json_body is not None:
            options["json"] = json_body
        if timeout is not None:
            options["timeout"] = timeout

        try:
            async with self._http.stream(method, url, **options) as response:
                content = await _read_capped(service, route, response)
        except httpx.TimeoutException as error:
            seconds = timeout_seconds or DEFAULT_TIMEOUT_SECONDS
            raise TaskFailure(f"{service} timed out on {route} ({type(error).__name__} after up to {seconds:g} s)") from None
        except httpx.RequestError as error:
            raise TaskFailure(f"{service} could not be reached for {route} ({type(error).__name__})") from None

        status = response.status_code
        if not 200 <= status < 300:
            detail = _detail(content, [*path_values, *(params or {}).values(), *_strings(json_body)])
            raise TaskFailure(f"{service} returned {status} for {route}" + (f": {detail}" if detail else ""), status)
        return LocalReply(status, content)


async def _read_capped(service: Service, route: str, response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise TaskFailure(f"{service} replied to {route} with more than {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _strings(value: Any) -> list[str]:
    """Return every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _detail(content: bytes, request_values: list[str]) -> str | None:
    """Return a service's error detail (FastAPI's `detail`, else the text), masked and shortened.

    NOTE: only whole request values are masked, so a detail that quotes part of
    a value, such as a fragment of a query, still shows that part.
    """
    text = content.decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if detail is not None:
        text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    for value in sorted(request_values, key=len, reverse=True):
        if len(value) >= MIN_MASKED_CHARS:
            text = text.replace(value, MASK)
    if not text:
        return None
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "..."
