"""Tasks and trusts as the embedded hub stores them."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


class TaskStatus(enum.StrEnum):
    """Lifecycle of a task on the hub, with FLIP's status names."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Endpoint(enum.StrEnum):
    """Names of the hub's API endpoints, used for counting, rate limits and faults."""

    PENDING = "pending"
    RESULT = "result"
    HEARTBEAT = "heartbeat"
    COHORT = "cohort"


@dataclass(frozen=True)
class TrustIdentity:
    """A registered trust: the identity block that starts every successful reply."""

    trust_id: str
    trust_name: str

    def as_block(self) -> dict[str, str]:
        """Return the identity block that starts every successful reply."""
        return {"trust_id": self.trust_id, "trust_name": self.trust_name}


@dataclass(frozen=True)
class Task:
    """An immutable snapshot of one task; the store replaces it with a new one on each change."""

    id: str
    trust_id: str
    task_type: str
    payload: str
    created_at: datetime
    status: TaskStatus = TaskStatus.PENDING
    handed_out_at: datetime | None = None
    retries: int = 0
    result: str | None = None
    success: bool | None = None
    completed_at: datetime | None = None

    def as_wire(self) -> dict[str, str]:
        """Return the task as `GET /tasks/pending` sends it."""
        return {
            "id": self.id,
            "task_type": self.task_type,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }

    def as_json(self) -> dict[str, Any]:
        """Return every field, with times as ISO 8601 text, for the admin endpoints."""
        return jsonable(asdict(self))


def jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    """Turn datetimes into ISO 8601 text so the dict can go through json.dumps."""
    converted = {}
    for name, value in fields.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        converted[name] = value
    return converted
