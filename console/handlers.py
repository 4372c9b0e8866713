"""Task handlers: a registry keyed by task type, and the diagnostic handlers.

A handler is an async function that takes the task's decoded JSON payload and
returns JSON-serialisable data (or None for success with no data). It raises
TaskFailure to fail the task with a message, and optionally the status code of
the local service that caused it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 10_000_000
"""The hub rejects a result longer than this with 422."""

TRUNCATION_MARKER = "...[result truncated by trust-console: {cut} characters removed to fit the hub's limit]"


class TaskFailure(Exception):
    """Raised by a handler to fail its task; the message becomes the result's `error`."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class HandlerContext:
    task_id: str
    task_type: str


Handler = Callable[[Any, HandlerContext], Awaitable[Any]]

PayloadDecoder = Callable[[str, str], str]
"""Turns (task_type, payload as sent by the hub) into the payload's JSON text; raises InvalidPayload."""


class InvalidPayload(Exception):
    """A payload could not be decoded; the message becomes the task's error as it is."""


@dataclass(frozen=True)
class HandlerOutcome:
    """A handler's outcome, ready to send as the body of a result report."""

    success: bool
    result: str | None
    error: str | None = None

    def fitted(self, max_chars: int) -> HandlerOutcome:
        """Return this outcome with its result cut to `max_chars`."""
        return HandlerOutcome(self.success, fit_result(self.result, max_chars), self.error)

    @classmethod
    def succeeded(cls, data: Any) -> HandlerOutcome:
        text = None if data is None else json.dumps(data)
        return cls(True, fit_result(text))

    @classmethod
    def failed(cls, message: str, status_code: int | None = None) -> HandlerOutcome:
        body: dict[str, Any] = {"error": message}
        if status_code is not None:
            body["status_code"] = status_code
        return cls(False, fit_result(json.dumps(body)), message)


def fit_result(text: str | None, max_chars: int = MAX_RESULT_CHARS) -> str | None:
    """Cut a result to `max_chars`, ending it with a marker that states how much was cut."""
    if text is None or len(text) <= max_chars:
        return text
    marker_room = len(TRUNCATION_MARKER.format(cut=len(text)))
    keep = max_chars - marker_room
    return text[:keep] + TRUNCATION_MARKER.format(cut=len(text) - keep)


class HandlerRegistry:
    """The handlers this agent can run, by task type."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, task_type: str, handler: Handler) -> None:
        if task_type in self._handlers:
            raise ValueError(f"a handler for task type {task_type!r} is already registered")
        self._handlers[task_type] = handler

    def get(self, task_type: str) -> Handler | None:
        return self._handlers.get(task_type)

    @property
    def task_types(self) -> list[str]:
        return sorted(self._handlers)


async def run_handler(
    registry: HandlerRegistry,
    enabled_task_types: Iterable[str] | None,
    context: HandlerContext,
    payload: str,
    timeout_seconds: float,
    decoder: PayloadDecoder | None = None,
    max_result_chars: int = MAX_RESULT_CHARS,
) -> HandlerOutcome:
    """Run the handler for one task and turn whatever happens into an outcome.

    Unknown and disabled types, invalid payloads, exceptions and time-outs all
    become failure outcomes, so the caller always has a result to report. The
    result is cut to `max_result_chars` before anything stores or sends it.
    """
    outcome = await _run_handler(registry, enabled_task_types, context, payload, timeout_seconds, decoder)
    return outcome.fitted(max_result_chars)


async def _run_handler(
    registry: HandlerRegistry,
    enabled_task_types: Iterable[str] | None,
    context: HandlerContext,
    payload: str,
    timeout_seconds: float,
    decoder: PayloadDecoder | None,
) -> HandlerOutcome:
    handler = registry.get(context.task_type)
    if handler is None:
        return HandlerOutcome.failed(f"Unknown task type: {context.task_type!r} has no handler on this trust")
    if enabled_task_types is not None and context.task_type not in enabled_task_types:
        return HandlerOutcome.failed(
            f"Task type {context.task_type!r} is disabled on this trust (not in ENABLED_TASK_TYPES)"
        )

    if decoder is not None:
        try:
            payload = decoder(context.task_type, payload)
        except InvalidPayload as error:
            return HandlerOutcome.failed(str(error))

    try:
        decoded = json.loads(payload)
    except ValueError as error:
        return HandlerOutcome.failed(f"Invalid payload: not valid JSON ({error})")
    except RecursionError:
        return HandlerOutcome.failed("Invalid payload: JSON nested too deeply")

    try:
        async with asyncio.timeout(timeout_seconds):
            data = await handler(decoded, context)
    except TaskFailure as failure:
        return HandlerOutcome.failed(failure.message, failure.status_code)
    except TimeoutError:
        return HandlerOutcome.failed(f"Handler timed out after {timeout_seconds:g} s (HANDLER_TIMEOUT_SECONDS)")
    except Exception as error:
        log.error(
            "handler for task %s (%s) raised %s", context.task_id, context.task_type, type(error).__name__
        )
        return HandlerOutcome.failed(f"Handler error: {type(error).__name__}: {error}")

    try:
        return HandlerOutcome.succeeded(data)
    except (TypeError, ValueError) as error:
        return HandlerOutcome.failed(f"Handler returned data that is not JSON-serialisable: {error}")


async def echo(payload: Any, context: HandlerContext) -> Any:
    """Return the payload unchanged."""
    return payload


async def sleep(payload: Any, context: HandlerContext) -> Any:
    """Sleep for `{"seconds": N}`, to simulate long-running work."""
    seconds = payload.get("seconds") if isinstance(payload, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        if seconds is None:
            raise TaskFailure("Invalid payload: 'seconds' is missing; expected {\"seconds\": N}")
        raise TaskFailure(f"Invalid payload: 'seconds' must be a non-negative number, got {seconds!r}")
    await asyncio.sleep(seconds)
    return {"slept_seconds": seconds}


async def fail(payload: Any, context: HandlerContext) -> Any:
    """Fail with `{"message": M}`, to simulate a handler that fails."""
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str):
        if message is None:
            raise TaskFailure("Invalid payload: 'message' is missing; expected {\"message\": \"text\"}")
        raise TaskFailure(f"Invalid payload: 'message' must be a string, got {type(message).__name__}")
    raise TaskFailure(f"Task failed on purpose: {message}")


DIAGNOSTIC_HANDLERS: dict[str, Handler] = {"echo": echo, "sleep": sleep, "fail": fail}


def default_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    for task_type, handler in DIAGNOSTIC_HANDLERS.items():
        registry.register(task_type, handler)
    return registry
