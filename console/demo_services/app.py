"""The demo's stand-ins for data-access-api and imaging-api, as one Starlette app with a mount for each.

Each route takes the requests FLIP's trust-api sends, checks the internal
service key, and replies with the shapes FLIP's services use. Every request
is recorded with its reply status, and tests can set a service's health or
make its next replies fail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .dataset import InvalidQuery, SyntheticCohort, rounded_count
from .imaging import ImagingState

DATA_ACCESS_API = "data-access-api"
IMAGING_API = "imaging-api"
SERVICE_VERSION = "0.1.0+demo"
MAX_RECORDS = 10_000

HealthState = Literal["ok", "degraded", "down"]


@dataclass(frozen=True)
class ServiceRequest:
    """One request to a demo service: `path` is relative to the service's base URL."""

    service: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int


class ServiceControls:
    """Health and injected failures of each service, and the record of requests, shared across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._health: dict[str, HealthState] = {DATA_ACCESS_API: "ok", IMAGING_API: "ok"}
        self._failures: dict[str, deque[int]] = {DATA_ACCESS_API: deque(), IMAGING_API: deque()}
        self._delays: dict[str, float] = {DATA_ACCESS_API: 0.0, IMAGING_API: 0.0}
        self._requests: deque[ServiceRequest] = deque(maxlen=MAX_RECORDS)

    def set_health(self, service: str, state: HealthState) -> None:
        """Make the service's `/health` reply ok, say degraded, or fail with 503."""
        with self._lock:
            self._health[_known(service)] = state

    def health(self, service: str) -> HealthState:
        with self._lock:
            return self._health[service]

    def set_delay(self, service: str, seconds: float) -> None:
        """Delay every reply of the service, `/health` included, by `seconds`; 0 removes the delay."""
        if seconds < 0:
            raise ValueError(f"delay must be 0 or more seconds, got {seconds}")
        with self._lock:
            self._delays[_known(service)] = seconds

    def delay(self, service: str) -> float:
        with self._lock:
            return self._delays[service]

    def fail_next(self, service: str, status: int, count: int = 1) -> None:
        """Reply `status` to the service's next `count` requests other than `/health`."""
        with self._lock:
            self._failures[_known(service)].extend([status] * count)

    def take_failure(self, service: str) -> int | None:
        with self._lock:
            queue = self._failures[service]
            return queue.popleft() if queue else None

    def record(self, request: ServiceRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self, service: str | None = None, *, include_health: bool = False) -> list[ServiceRequest]:
        """Return the recorded requests in arrival order, without health probes unless asked."""
        with self._lock:
            return [
                request
                for request in self._requests
                if (service is None or request.service == service) and (include_health or request.path != "/health")
            ]


def _known(service: str) -> str:
    if service not in (DATA_ACCESS_API, IMAGING_API):
        raise ValueError(f"unknown service {service!r}: expected {DATA_ACCESS_API!r} or {IMAGING_API!r}")
    return service


_Handler = Callable[[Request, Any], Awaitable[Response]]


class DemoServicesApi:
    """Routes of both services, bound to one dataset, imaging state, key and controls."""

    def __init__(
        self,
        cohort: SyntheticCohort,
        imaging: ImagingState,
        controls: ServiceControls,
        *,
        internal_key: str,
        internal_key_header: str,
    ) -> None:
        self.cohort = cohort
        self.imaging = imaging
        self.controls = controls
        self._key = internal_key.encode()
        self._key_header = internal_key_header

    def app(self) -> Starlette:
        data_access = [
            Route("/health", self._route(DATA_ACCESS_API, self._health_of(DATA_ACCESS_API), public=True), methods=["GET"]),
            Route("/cohort", self._route(DATA_ACCESS_API, self.cohort_query), methods=["POST"]),
            Route("/cohort/snapshot", self._route(DATA_ACCESS_API, self.cohort_snapshot), methods=["POST"]),
        ]
        imaging = [
            Route("/health", self._route(IMAGING_API, self._health_of(IMAGING_API), public=True), methods=["GET"]),
            Route(
                "/projects/create-project-from-central-hub-project",
                self._route(IMAGING_API, self.create_project),
                methods=["POST"],
            ),
            Route("/projects/{project_id}", self._route(IMAGING_API, self.delete_project), methods=["DELETE"]),
            Route(
                "/retrieval/import_status_count/{project_id}",
                self._route(IMAGING_API, self.import_status),
                methods=["GET"],
            ),
            Route(
                "/retrieval/reimport_imaging_project_studies/{project_id}",
                self._route(IMAGING_API, self.reimport),
                methods=["PUT"],
            ),
            Route("/users", self._route(IMAGING_API, self.update_user), methods=["PUT"]),
        ]
        return Starlette(routes=[Mount(f"/{DATA_ACCESS_API}", routes=data_access), Mount(f"/{IMAGING_API}", routes=imaging)])

    def _route(self, service: str, handler: _Handler, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler with the key check, injected failures and the request record."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body = _decode(raw)
            response = await self._respond(service, handler, request, body, public)
            mount = f"/{service}"
            self.controls.record(
                ServiceRequest(
                    service=service,
                    method=request.method,
                    path=request.url.path.removeprefix(mount),
                    query=dict(request.query_params),
                    headers=dict(request.headers),
                    body=body,
                    status=response.status_code,
                )
            )
            return response

        return endpoint

    async def _respond(self, service: str, handler: _Handler, request: Request, body: Any, public: bool) -> Response:
        delay = self.controls.delay(service)
        if delay > 0:
            await asyncio.sleep(delay)
        if public:
            return await handler(request, body)
        offered = request.headers.get(self._key_header, "").encode()
        if not hmac.compare_digest(offered, self._key):
            return _error(401, "Invalid or missing internal service key")
        failure = self.controls.take_failure(service)
        if failure is not None:
            return _error(failure, "Failure injected by the demo")
        return await handler(request, body)

    def _health_of(self, service: str) -> _Handler:
        """Build the `/health` handler of one service, which replies with the state set in its controls."""

        async def health(request: Request, body: Any) -> Response:
            state = self.controls.health(service)
            if state == "down":
                return _error(503, "Service unavailable")
            return JSONResponse({"status": state, "version": SERVICE_VERSION})

        return health

    async def cohort_query(self, request: Request, body: Any) -> Response:
        fields = _string_fields(body, ("encrypted_project_id", "query_id", "query_name", "query", "trust_id"))
        if isinstance(fields, Response):
            return fields
        try:
            statistics = self.cohort.statistics(fields["query"], fields["query_id"], fields["trust_id"])
        except InvalidQuery as error:
            return _error(400, str(error))
        return JSONResponse(statistics)

    async def cohort_snapshot(self, request: Request, body: Any) -> Response:
        fields = _string_fields(body, ("encrypted_project_id", "query"))
        if isinstance(fields, Response):
            return fields
        try:
            rows = self.cohort.matching(fields["query"])
        except InvalidQuery as error:
            return _error(400, str(error))
        row_count = rounded_count(len(rows))
        if row_count == 0:
            return _error(403, "Cohort is below the minimum size; nothing was persisted")
        return JSONResponse(
            {
                "row_count": row_count,
                "columns": list(rows[0]),
                "created_at": datetime.now(timezone.utc).isoformat(),
            }
        )

    async def create_project(self, request: Request, body: Any) -> Response:
        fields = _string_fields(body, ("project_id", "trust_id", "project_name"))
        if isinstance(fields, Response):
            return fields
        if not isinstance(body.get("users", []), list):
            return _error(422, "users must be a list")
        return JSONResponse(self.imaging.create_project(body))

    async def delete_project(self, request: Request, body: Any) -> Response:
        project_id = request.path_params["project_id"]
        deleted = self.imaging.delete_project(project_id)
        if deleted is None:
            return _error(404, f"Project {project_id} not found")
        return JSONResponse(deleted)

    async def import_status(self, request: Request, body: Any) -> Response:
        project_id = request.path_params["project_id"]
        problem = _check_encoded_query(request)
        if problem is not None:
            return problem
        status = self.imaging.import_status(project_id)
        if status is None:
            return _error(404, f"Project {project_id} not found")
        return JSONResponse(status)

    async def reimport(self, request: Request, body: Any) -> Response:
        project_id = request.path_params["project_id"]
        problem = _check_encoded_query(request)
        if problem is not None:
            return problem
        if not self.imaging.has_project(project_id):
            return _error(404, f"Project {project_id} not found")
        return JSONResponse({"message": "Reimport queued", "projectId": project_id}, status_code=202)

    async def update_user(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("email"), str) or not isinstance(body.get("enabled"), bool):
            return _error(422, "body must have an email string and an enabled boolean")
        if not self.imaging.set_user_enabled(body["email"], body["enabled"]):
            return _error(404, f"User {body['email']} not found")
        return JSONResponse({"email": body["email"], "enabled": body["enabled"]})


def _check_encoded_query(request: Request) -> Response | None:
    """Return a 400 reply unless `encoded_query` is non-empty base64url, as imaging-api decodes it."""
    encoded = request.query_params.get("encoded_query", "")
    if not encoded:
        return _error(400, "Query must not be empty")
    try:
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return _error(400, "encoded_query is not base64url-encoded UTF-8 text")
    return None


def _string_fields(body: Any, names: tuple[str, ...]) -> dict[str, str] | Response:
    if not isinstance(body, dict):
        return _error(422, "body must be a JSON object")
    missing = [name for name in names if not isinstance(body.get(name), str)]
    if missing:
        return _error(422, f"missing or not a string: {', '.join(missing)}")
    return {name: body[name] for name in names}


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)
