"""The trust-facing API that FLIP's hub serves: poll, result, heartbeat and cohort results.

Each request goes through the same steps: injected delay, injected status
fault, API key check, rate limit, then the endpoint's own work. Whatever the
response, the request is recorded in `store.records` with its status code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.flip.crypto import seal, task_context
from console.hub.faults import MalformedFault, MalformedKind, StatusFault
from console.hub.models import Endpoint, Task, TrustIdentity
from console.hub.ratelimit import RateLimiter, retry_after_header
from console.hub.store import HubStore, ResultOutcome
from console.hub.validation import (
    InvalidJson,
    decode_for_record,
    decode_json,
    json_invalid_error,
    validate_cohort_results,
    validate_heartbeat_body,
    validate_result_body,
    validate_task_id,
)

log = logging.getLogger(__name__)


@dataclass
class _Call:
    """One API request on its way through the steps, and the trust once its key is known."""

    request: Request
    body: bytes
    trust: TrustIdentity | None = None


_Handler = Callable[[_Call], Awaitable[Response]]


def error_response(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class HubApi:
    """Routes for `/api`, bound to one store, key header, rate limiter and hub identity."""

    def __init__(
        self,
        store: HubStore,
        *,
        api_key_header: str,
        rate_limiter: RateLimiter,
        hub_version: str,
        aes_key_fingerprint: str | None,
        payload_key: bytes | None = None,
    ) -> None:
        self.store = store
        self.api_key_header = api_key_header
        self.rate_limiter = rate_limiter
        self.hub_version = hub_version
        self.aes_key_fingerprint = aes_key_fingerprint
        self.payload_key = payload_key

    def routes(self) -> list[Route]:
        return [
            Route("/tasks/pending", self.poll, methods=["GET"]),
            Route("/tasks/{task_id}/result", self.report_result, methods=["POST"]),
            Route("/trust/heartbeat", self.heartbeat, methods=["POST"]),
            Route("/cohort/results", self.cohort_results, methods=["POST"]),
        ]

    async def poll(self, request: Request) -> Response:
        return await self._serve(request, Endpoint.PENDING, self._poll)

    async def report_result(self, request: Request) -> Response:
        return await self._serve(request, Endpoint.RESULT, self._report_result)

    async def heartbeat(self, request: Request) -> Response:
        return await self._serve(request, Endpoint.HEARTBEAT, self._heartbeat)

    async def cohort_results(self, request: Request) -> Response:
        return await self._serve(request, Endpoint.COHORT, self._cohort_results)

    async def _serve(self, request: Request, endpoint: Endpoint, handler: _Handler) -> Response:
        """Respond to one request and record it, whichever step produced the response."""
        call = _Call(request=request, body=await request.body())
        response = await self._respond(call, endpoint, handler)
        self._record(call, endpoint, response.status_code)
        return response

    async def _respond(self, call: _Call, endpoint: Endpoint, handler: _Handler) -> Response:
        faults = self.store.faults
        delay = faults.delay_for(endpoint)
        if delay > 0:
            await asyncio.sleep(delay)

        fault = faults.take_status_fault(endpoint)
        if fault is not None:
            log.debug("Injected status %d in response to a %s request", fault.status, endpoint)
            return _fault_response(fault)

        api_key = call.request.headers.get(self.api_key_header)
        trust = self.store.trust_for_key(api_key)
        if trust is None:
            log.info("Rejected %s request: %s API key", endpoint, "invalid" if api_key else "missing")
            return self._unauthorized(api_key)
        call.trust = trust

        wait_seconds = self.rate_limiter.check(api_key, endpoint)
        if wait_seconds is not None:
            log.info("Rate limit exceeded for %s requests from trust %s", endpoint, trust.trust_id)
            return self._rate_limited(endpoint, wait_seconds)

        try:
            return await handler(call)
        except Exception:
            log.exception("Unexpected error in %s request from trust %s", endpoint, trust.trust_id)
            return error_response(500, "Internal server error")

    def _record(self, call: _Call, endpoint: Endpoint, status: int) -> None:
        records = self.store.records
        trust_id = call.trust.trust_id if call.trust is not None else None
        request = call.request
        records.record_request(endpoint, request.method, request.url.path, status, trust_id)

        if endpoint is Endpoint.HEARTBEAT:
            records.record_heartbeat(trust_id, decode_for_record(call.body), status)
        elif endpoint is Endpoint.RESULT:
            records.record_result(request.path_params["task_id"], trust_id, decode_for_record(call.body), status)
        elif endpoint is Endpoint.COHORT:
            records.record_cohort_results(trust_id, decode_for_record(call.body), status)

    def _unauthorized(self, api_key: str | None) -> Response:
        if not api_key:
            detail = f"Missing API key: send it in the {self.api_key_header} header"
        else:
            detail = "Invalid API key"
        return error_response(401, detail, headers={"WWW-Authenticate": "ApiKey"})

    def _rate_limited(self, endpoint: Endpoint, wait_seconds: float) -> Response:
        limits = self.rate_limiter.limits
        detail = (
            f"Rate limit exceeded: {limits.limit_for(endpoint)} {endpoint} requests "
            f"per {limits.window_seconds:g} seconds"
        )
        headers = {"Retry-After": retry_after_header(wait_seconds)} if limits.send_retry_after else None
        return error_response(429, detail, headers=headers)

    async def _poll(self, call: _Call) -> Response:
        assert call.trust is not None
        malformed = self.store.faults.take_malformed()
        if malformed is not None:
            log.debug("Injected malformed poll response: %s", malformed.kind)
            return self._malformed_poll_reply(call.trust, malformed)

        tasks = self.store.hand_out(call.trust.trust_id)
        if tasks:
            log.debug("Handed out %d task(s) to trust %s", len(tasks), call.trust.trust_id)
        return JSONResponse({**call.trust.as_block(), "tasks": [self._wire(task) for task in tasks]})

    def _wire(self, task: Task) -> dict[str, str]:
        """Return a task as the poll reply sends it, its payload sealed for its task type when a key is set."""
        wire = task.as_wire()
        if self.payload_key is not None:
            wire["payload"] = seal(task.payload, self.payload_key, task_context(task.task_type))
        return wire

    async def _report_result(self, call: _Call) -> Response:
        assert call.trust is not None
        task_id, errors = validate_task_id(call.request.path_params["task_id"])
        body, body_errors = validate_result_body(call.body)
        errors.extend(body_errors)
        if task_id is None or body is None:
            raw_id = call.request.path_params["task_id"]
            log.info("Rejected invalid result for task %s: %d error(s)", raw_id, len(errors))
            return error_response(422, errors)

        outcome, task = self.store.record_result(task_id, call.trust.trust_id, body.success, body.result)
        if outcome is ResultOutcome.NOT_FOUND:
            log.info("Rejected result for task %s: not found", task_id)
            return error_response(404, f"Task {task_id} not found")
        if outcome is ResultOutcome.WRONG_TRUST:
            log.info("Rejected result for task %s: trust %s does not own it", task_id, call.trust.trust_id)
            return error_response(403, f"Task {task_id} belongs to another trust")
        assert task is not None
        if outcome is ResultOutcome.NOT_IN_PROGRESS:
            log.info("Rejected result for task %s: it is %s, not IN_PROGRESS", task_id, task.status)
            return error_response(409, f"Task {task_id} is {task.status}, not IN_PROGRESS")

        log.debug("Task %s (%s) %s, reported by trust %s", task_id, task.task_type, task.status, task.trust_id)
        return JSONResponse({**call.trust.as_block(), "message": f"Task {task_id} marked {task.status}"})

    async def _heartbeat(self, call: _Call) -> Response:
        assert call.trust is not None
        _snapshot, errors = validate_heartbeat_body(call.body)
        if errors:
            log.info("Rejected heartbeat snapshot from trust %s: %d error(s)", call.trust.trust_id, len(errors))
            return error_response(422, errors)

        return JSONResponse(
            {
                **call.trust.as_block(),
                "message": "Heartbeat received",
                "hub_version": self.hub_version,
                "aes_key_fingerprint": self.aes_key_fingerprint,
            }
        )

    async def _cohort_results(self, call: _Call) -> Response:
        assert call.trust is not None
        try:
            body = decode_json(call.body)
        except InvalidJson as exc:
            log.info("Rejected cohort results from trust %s: body is not JSON", call.trust.trust_id)
            return error_response(422, json_invalid_error(exc))
        errors = validate_cohort_results(body)
        if errors:
            log.info("Rejected cohort results from trust %s: %d error(s)", call.trust.trust_id, len(errors))
            return error_response(422, errors)
        if body["trust_id"] != call.trust.trust_id:
            log.info("Rejected cohort results from trust %s: they name another trust", call.trust.trust_id)
            return error_response(403, "Trust is not authorised to submit results for another trust")

        log.debug("Received cohort results for query %s from trust %s", body.get("query_id"), call.trust.trust_id)
        return JSONResponse({**call.trust.as_block(), "message": "Cohort results received"})

    def _malformed_poll_reply(self, trust: TrustIdentity, fault: MalformedFault) -> Response:
        """Build a broken poll reply; only the missing-field kinds hand out real tasks."""
        identity = trust.as_block()

        if fault.kind is MalformedKind.NOT_JSON:
            # A reply cut off mid-stream, still labelled as JSON.
            truncated = json.dumps(identity)[:-1] + ', "tasks": [{"id": '
            return Response(truncated, media_type="application/json")

        if fault.kind is MalformedKind.TASKS_NOT_LIST:
            # One task object where the list of tasks should be.
            return JSONResponse({**identity, "tasks": self._synthetic_task()})

        if fault.kind is MalformedKind.OVERSIZED:
            return Response(_padded_json(identity, fault.size_bytes), media_type="application/json")

        # The missing-field kinds hand out real tasks, so the store shows which one lost a field.
        tasks = [self._wire(task) for task in self.store.hand_out(trust.trust_id)] or [self._synthetic_task()]
        missing = "id" if fault.kind is MalformedKind.TASK_MISSING_ID else "task_type"
        del tasks[0][missing]
        return JSONResponse({**identity, "tasks": tasks})

    def _synthetic_task(self) -> dict[str, str]:
        """Return a well-formed task that is not in the store, so a result for it gets 404."""
        task = Task(id=str(uuid.uuid4()), trust_id="", task_type="echo", payload="{}", created_at=self.store.now())
        return self._wire(task)


def _padded_json(identity: dict[str, str], size_bytes: int) -> bytes:
    """Return a valid poll reply with no tasks, padded to `size_bytes` (or its minimum size)."""
    empty = json.dumps({**identity, "tasks": [], "padding": ""}).encode()
    padding = "x" * max(size_bytes - len(empty), 0)
    return json.dumps({**identity, "tasks": [], "padding": padding}).encode()


def _fault_response(fault: StatusFault) -> Response:
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    if fault.status == 401:
        headers["WWW-Authenticate"] = "ApiKey"

    if fault.status in (204, 304):
        # These statuses carry no body by definition.
        return Response(status_code=fault.status, headers=headers)
    if fault.text is not None:
        return Response(fault.text, status_code=fault.status, headers=headers, media_type="text/plain")
    return JSONResponse(fault.json_body(), status_code=fault.status, headers=headers)
