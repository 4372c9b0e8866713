"""One log line per agent event, shared by the headless logger and the console's log pane.

Lines name the task id, the task type and the outcome, and never the API key
or a payload's content.
"""

from __future__ import annotations

import logging

from .events import (
    AgentEvent,
    AgentStopped,
    ConnectivityChanged,
    DrainStarted,
    HeartbeatFailed,
    HeartbeatOk,
    IdentityConfirmed,
    IdentityMismatch,
    MalformedReply,
    Paused,
    PollCompleted,
    PollFailed,
    PollScheduled,
    ReportFailed,
    ReportStuck,
    Resumed,
    TaskFinished,
    TaskReceived,
    TaskReported,
    TaskSkipped,
    TaskEvent,
    TaskStarted,
    TaskUpdated,
)

log = logging.getLogger("console.events")


def _retry_text(seconds: float | None) -> str:
    return "" if seconds is None else f"; retrying in {seconds:.1f} s"


def _outcome_text(event: TaskReported) -> str:
    if event.success is None:
        return ""
    outcome = "succeeded" if event.success else "failed"
    if event.duration_seconds is None:
        return f": {outcome}"
    return f": {outcome} in {event.duration_seconds:.2f} s"


def describe_event(event: AgentEvent) -> tuple[int, str] | None:
    """Return the log level and line for an event, or None for events too frequent to log."""
    match event:
        # A task's start and its end (the hub has its result) are logged at INFO; the steps between
        # are at DEBUG, so a busy agent writes two lines per task.
        case TaskReceived(task_id=task_id, task_type=task_type):
            return logging.DEBUG, f"task {task_id} ({task_type}) received"
        case TaskStarted(task_id=task_id, task_type=task_type):
            return logging.INFO, f"task {task_id} ({task_type}) started"
        case TaskFinished(task_id=task_id, task_type=task_type, success=True, duration_seconds=duration):
            return logging.DEBUG, f"task {task_id} ({task_type}) finished in {duration:.2f} s"
        case TaskFinished(task_id=task_id, task_type=task_type, duration_seconds=duration, error=error):
            return logging.WARNING, f"task {task_id} ({task_type}) failed in {duration:.2f} s: {error}"
        case TaskReported(task_id=task_id, task_type=task_type, attempts=attempts):
            return logging.INFO, f"task {task_id} ({task_type}) reported{_outcome_text(event)} (attempt {attempts})"
        case ReportFailed(task_id=task_id, task_type=task_type, final=True, status_code=status, error=error):
            return logging.ERROR, f"task {task_id} ({task_type}) result rejected by the hub ({status}): {error}; not resending"
        case ReportFailed(task_id=task_id, task_type=task_type, attempt=attempt, error=error, retry_in_seconds=wait):
            return (
                logging.WARNING,
                f"task {task_id} ({task_type}) report failed (attempt {attempt}): {error}{_retry_text(wait)}",
            )
        case ReportStuck(task_id=task_id, task_type=task_type, undelivered_seconds=age):
            return (
                logging.ERROR,
                f"task {task_id} ({task_type}) result stuck: undelivered for {age:.0f} s; still retrying",
            )
        case TaskSkipped(task_id=task_id, task_type=task_type, reason=reason):
            return logging.INFO, f"task {task_id} ({task_type}) handed out again: {reason}"
        case HeartbeatOk() | TaskUpdated():
            return None
        case HeartbeatFailed(error=error, retry_in_seconds=wait):
            return logging.WARNING, f"heartbeat failed: {error}{_retry_text(wait)}"
        case PollCompleted(task_count=count) if count > 0:
            return logging.INFO, f"poll returned {count} task(s)"
        case PollCompleted() | PollScheduled():
            return None
        case PollFailed(error=error, retry_in_seconds=wait):
            return logging.WARNING, f"poll failed: {error}{_retry_text(wait)}"
        case MalformedReply(endpoint=endpoint, reason=reason):
            return logging.WARNING, f"unusable reply from the hub's {endpoint} endpoint: {reason}"
        case ConnectivityChanged(previous=previous, current=current, reason=reason):
            level = logging.INFO if current.value in ("online", "stopped") else logging.WARNING
            return level, f"hub connectivity {previous} -> {current}: {reason}"
        case IdentityConfirmed(trust_id=trust_id, trust_name=trust_name):
            return logging.INFO, f"hub identifies this trust as {trust_name} ({trust_id})"
        case IdentityMismatch(expected_trust_id=expected, trust_id=trust_id, trust_name=trust_name):
            return (
                logging.ERROR,
                f"identity mismatch: the hub says this key belongs to {trust_name} ({trust_id}), but"
                f" EXPECTED_TRUST_ID is {expected}; check that this agent was deployed with this trust's key",
            )
        case Paused():
            return logging.INFO, "polling paused; heartbeats, handlers and reports go on"
        case Resumed():
            return logging.INFO, "polling resumed"
        case DrainStarted(in_flight=in_flight, timeout_seconds=timeout):
            return logging.INFO, f"stopping: no new tasks; waiting up to {timeout:g} s for {in_flight} task(s) in flight"
        case AgentStopped(reason=reason):
            return logging.INFO, f"agent stopped: {reason}"
    return logging.DEBUG, type(event).__name__


def event_fields(event: AgentEvent) -> dict[str, object]:
    """Return the structured fields of an event for a log record's `extra`."""
    fields: dict[str, object] = {"event": type(event).__name__}
    if isinstance(event, TaskEvent):
        fields["task_id"] = event.task_id
        fields["task_type"] = event.task_type
    attempt = getattr(event, "attempt", None) or getattr(event, "attempts", None)
    if attempt is not None:
        fields["attempt"] = attempt
    status_code = getattr(event, "status_code", None)
    if status_code is not None:
        fields["status_code"] = status_code
    return fields


def log_event(event: AgentEvent) -> None:
    """Event subscriber that writes each event to the `console.events` logger."""
    described = describe_event(event)
    if described is not None and log.isEnabledFor(described[0]):
        level, line = described
        log.log(level, line, extra=event_fields(event))
