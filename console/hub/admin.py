"""Admin routes under `/admin`: enqueue tasks, read the records, inject faults.

These routes have no authentication. They exist for the demo, tests and
benchmarks, and are safe only because the embedded hub listens on 127.0.0.1.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.hub.api import error_response
from console.hub.models import TaskStatus
from console.hub.store import HubStore
from console.hub.validation import InvalidJson, decode_json

log = logging.getLogger(__name__)

# FLIP's hub shows a trust as online while its last heartbeat is under 30 seconds old.
ONLINE_WINDOW = timedelta(seconds=30)

MAX_ENQUEUE_COUNT = 100_000


class AdminApi:
    """Routes for `/admin`, bound to one store."""

    def __init__(self, store: HubStore) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        return [
            Route("/tasks", self.enqueue_tasks, methods=["POST"]),
            Route("/tasks", self.list_tasks, methods=["GET"]),
            Route("/results", self.list_results, methods=["GET"]),
            Route("/heartbeats", self.list_heartbeats, methods=["GET"]),
            Route("/cohort-results", self.list_cohort_results, methods=["GET"]),
            Route("/requests", self.count_requests, methods=["GET"]),
            Route("/trusts", self.list_trusts, methods=["GET"]),
            Route("/stale-recovery", self.recover_stale, methods=["POST"]),
            Route("/faults", self.show_faults, methods=["GET"]),
            Route("/faults", self.add_fault, methods=["POST"]),
            Route("/faults", self.clear_faults, methods=["DELETE"]),
        ]

    async def enqueue_tasks(self, request: Request) -> Response:
        """Enqueue `count` tasks from `{"task_type", "payload", "count", "trust_id"}`."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body

        task_type = body.get("task_type")
        if not isinstance(task_type, str) or not task_type:
            return error_response(422, "task_type is required and must be a non-empty string")
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ENQUEUE_COUNT:
            return error_response(422, f"count must be an integer from 1 to {MAX_ENQUEUE_COUNT}, got {count!r}")
        trust_id = body.get("trust_id")
        if trust_id is not None and not isinstance(trust_id, str):
            return error_response(422, f"trust_id must be a string, got {trust_id!r}")

        try:
            tasks = self.store.enqueue_many(task_type, body.get("payload", {}), count, trust_id=trust_id)
        except ValueError as exc:
            return error_response(422, str(exc))
        return JSONResponse({"ids": [task.id for task in tasks]}, status_code=201)

    async def list_tasks(self, request: Request) -> Response:
        """List tasks, optionally filtered by the `status`, `trust_id` and `task_type` query parameters."""
        params = request.query_params
        status = params.get("status")
        if status is not None and status not in TaskStatus.__members__:
            expected = ", ".join(TaskStatus.__members__)
            return error_response(422, f"status must be one of {expected}, got {status!r}")

        tasks = self.store.tasks(status=status, trust_id=params.get("trust_id"), task_type=params.get("task_type"))
        return JSONResponse({"tasks": [task.as_json() for task in tasks]})

    async def list_results(self, request: Request) -> Response:
        return JSONResponse({"results": [record.as_json() for record in self.store.records.results()]})

    async def list_heartbeats(self, request: Request) -> Response:
        return JSONResponse({"heartbeats": [record.as_json() for record in self.store.records.heartbeats()]})

    async def list_cohort_results(self, request: Request) -> Response:
        records = self.store.records.cohort_results()
        return JSONResponse({"cohort_results": [record.as_json() for record in records]})

    async def count_requests(self, request: Request) -> Response:
        """Return request counts per endpoint and status code (JSON keys are strings)."""
        counts = self.store.records.request_counts()
        as_json = {
            endpoint: {str(status): number for status, number in by_status.items()}
            for endpoint, by_status in counts.items()
        }
        total = sum(sum(by_status.values()) for by_status in counts.values())
        return JSONResponse({"counts": as_json, "total": total})

    async def list_trusts(self, request: Request) -> Response:
        now = self.store.now()
        trusts = []
        for trust in self.store.trusts():
            last = self.store.records.last_heartbeat_at(trust.trust_id)
            online = last is not None and now - last < ONLINE_WINDOW
            trusts.append(
                {**trust.as_block(), "last_heartbeat_at": last.isoformat() if last else None, "online": online}
            )
        return JSONResponse({"trusts": trusts})

    async def recover_stale(self, request: Request) -> Response:
        """Run one stale-recovery pass now instead of waiting for the periodic one."""
        recovery = self.store.recover_stale()
        return JSONResponse({"requeued": list(recovery.requeued), "failed": list(recovery.failed)})

    async def show_faults(self, request: Request) -> Response:
        return JSONResponse({"faults": self.store.faults.snapshot()})

    async def add_fault(self, request: Request) -> Response:
        """Add a fault from `{"kind": "status" | "delay" | "malformed", ...}`."""
        body = await _json_object(request)
        if isinstance(body, Response):
            return body

        try:
            self._add_fault(body)
        except (ValueError, TypeError) as exc:
            return error_response(422, str(exc))
        log.info("Injected fault: %s", body)
        return JSONResponse({"faults": self.store.faults.snapshot()}, status_code=201)

    async def clear_faults(self, request: Request) -> Response:
        """Clear every fault, or those of the endpoint named in the `endpoint` query parameter."""
        try:
            self.store.faults.clear(request.query_params.get("endpoint"))
        except ValueError as exc:
            return error_response(422, str(exc))
        return JSONResponse({"faults": self.store.faults.snapshot()})

    def _add_fault(self, body: dict[str, Any]) -> None:
        faults = self.store.faults
        kind = body.get("kind")
        count = body.get("count", 1)

        if kind == "status":
            faults.fail_next(
                body.get("endpoint", "*"),
                _required(body, "status"),
                count,
                body=body.get("body"),
                text=body.get("text"),
                retry_after=body.get("retry_after"),
            )
        elif kind == "delay":
            seconds = _required(body, "seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ValueError(f"seconds must be a number, got {seconds!r}")
            faults.set_delay(body.get("endpoint", "*"), seconds)
        elif kind == "malformed":
            faults.malform_next(_required(body, "malformed"), count, size_bytes=body.get("size_bytes", 2_000_000))
        else:
            raise ValueError(f"kind must be 'status', 'delay' or 'malformed', got {kind!r}")


def _required(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise ValueError(f"{name} is required for a {body.get('kind')} fault")
    return body[name]


async def _json_object(request: Request) -> dict[str, Any] | Response:
    """Return the request body as a JSON object, or the 422 reply to send instead."""
    try:
        body = decode_json(await request.body())
    except InvalidJson as exc:
        return error_response(422, f"Body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error_response(422, "Body must be a JSON object")
    return body
