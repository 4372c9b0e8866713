"""The agent's record of each task it received, from hand-out to report."""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass, field
from datetime import datetime


class TaskState(enum.StrEnum):
    """Stage of a task on its way from the hub, through a handler, back to the hub."""

    QUEUED = "queued"
    """Received from the hub, waiting for a handler slot."""

    RUNNING = "running"

    AWAITING_REPORT = "awaiting report"
    """Finished; the result is being sent, or waits to be retried."""

    DONE = "done"
    """The hub accepted the result."""

    REJECTED = "rejected"
    """The hub refused the result with a final status (403, 404, 409, 422)."""


FINAL_STATES = (TaskState.DONE, TaskState.REJECTED)
"""States a task leaves only when the hub hands it out again."""


@dataclass(frozen=True)
class ReportAttempt:
    at: datetime
    status_code: int | None
    error: str | None


@dataclass
class TaskRecord:
    """The agent's record of one task, which the console renders."""

    task_id: str
    task_type: str
    payload_summary: str
    received_at: datetime
    state: TaskState = TaskState.QUEUED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    success: bool | None = None
    result: str | None = None
    """The result text exactly as sent to the hub (JSON text, or None)."""
    error: str | None = None
    """The handler's failure message, when the result is a failure."""
    report_attempts: list[ReportAttempt] = field(default_factory=list)
    rejection: str | None = None
    """The hub's reason when it refused the result for good."""
    stuck: bool = False
    """Undelivered for longer than REPORT_STUCK_AFTER_SECONDS; still retried."""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def last_report_error(self) -> str | None:
        if not self.report_attempts:
            return None
        return self.report_attempts[-1].error

    @property
    def last_error(self) -> str | None:
        """The error to show on one line: the rejection, else the last report error, else the handler's."""
        return self.rejection or self.last_report_error or self.error


def summarize_payload(payload: str) -> str:
    """Describe a payload by shape and size without showing its content.

    Payloads can carry patient-adjacent data, so logs and the console show
    only this summary.
    """
    size = len(payload.encode("utf-8", errors="replace"))
    try:
        decoded = json.loads(payload)
    except ValueError:
        if _is_envelope(payload):
            return f"encrypted envelope, {size} bytes"
        return f"not JSON, {size} bytes"
    except RecursionError:
        return f"JSON nested too deeply to read, {size} bytes"

    if isinstance(decoded, dict):
        keys = ", ".join(sorted(str(key) for key in decoded)[:8])
        more = ", ..." if len(decoded) > 8 else ""
        return f"JSON object, {size} bytes, keys: {keys}{more}" if decoded else f"JSON object, {size} bytes, empty"
    return f"JSON {type(decoded).__name__}, {size} bytes"


ENVELOPE_KEYS = {"v", "kid", "iv", "ct"}
"""Keys of FLIP's encrypted payload envelope, which travels as base64 of a JSON object."""


def _is_envelope(payload: str) -> bool:
    """Check whether a payload has the form of an encrypted envelope; it is not decrypted here."""
    try:
        envelope = json.loads(base64.b64decode(payload, validate=True))
    except (ValueError, RecursionError):
        return False
    return isinstance(envelope, dict) and ENVELOPE_KEYS <= envelope.keys()
