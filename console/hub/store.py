"""In-memory state of the embedded hub: trusts, tasks and stale recovery.

Every method takes one lock, so tests may read the store from their own thread
while the hub serves requests in another. Reads return immutable snapshots.
The records of received requests live in `store.records` (see records.py).
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from console.hub.faults import FaultInjector
from console.hub.models import Task, TaskStatus, TrustIdentity
from console.hub.records import RecordLog

log = logging.getLogger(__name__)

MAX_TASKS_PER_POLL = 50


class ResultOutcome(enum.Enum):
    """Outcome of applying a reported result; each value is the HTTP status it maps to."""

    RECORDED = 200
    WRONG_TRUST = 403
    NOT_FOUND = 404
    NOT_IN_PROGRESS = 409


@dataclass(frozen=True)
class StaleRecovery:
    """Ids of the tasks one stale-recovery pass put back to PENDING or marked FAILED."""

    requeued: tuple[str, ...]
    failed: tuple[str, ...]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class HubStore:
    """Trusts, tasks and everything the hub received, shared by the server thread and tests."""

    def __init__(
        self,
        *,
        stale_after_seconds: float = 1800.0,
        max_retries: int = 3,
        stale_check_interval_seconds: float = 600.0,
        max_records: int = 100_000,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.stale_after_seconds = stale_after_seconds
        self.max_retries = max_retries
        self.stale_check_interval_seconds = stale_check_interval_seconds
        self.faults = FaultInjector()
        self._clock = clock

        # The condition shares the re-entrant lock so that wait_for predicates may call store methods.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

        self._trusts_by_key: dict[str, TrustIdentity] = {}
        self._tasks: dict[str, Task] = {}
        self.records = RecordLog(self._changed, clock, max_records)

    def now(self) -> datetime:
        """Return the store's current time (UTC)."""
        return self._clock()

    # Trusts

    def register_trust(self, api_key: str, trust_name: str, trust_id: str | None = None) -> TrustIdentity:
        """Register a trust under `api_key`; a missing `trust_id` gets a fresh UUID."""
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        trust_id = str(uuid.UUID(trust_id)) if trust_id is not None else str(uuid.uuid4())
        trust = TrustIdentity(trust_id=trust_id, trust_name=trust_name)

        with self._lock:
            if api_key in self._trusts_by_key:
                raise ValueError(f"a trust is already registered under this API key: {trust_name!r}")
            self._trusts_by_key[api_key] = trust
        log.info("Registered trust %s (%s)", trust_name, trust_id)
        return trust

    def trust_for_key(self, api_key: str | None) -> TrustIdentity | None:
        """Return the trust registered under `api_key`, comparing keys in constant time."""
        if not api_key:
            return None
        offered = api_key.encode()
        match = None
        with self._lock:
            for key, trust in self._trusts_by_key.items():
                if hmac.compare_digest(key.encode(), offered):
                    match = trust
        return match

    def trusts(self) -> list[TrustIdentity]:
        with self._lock:
            return list(self._trusts_by_key.values())

    # Tasks

    def enqueue(self, task_type: str, payload: Any, *, trust_id: str | None = None) -> Task:
        """Add one PENDING task; a payload that is not a string is sent as its JSON text."""
        return self.enqueue_many(task_type, payload, 1, trust_id=trust_id)[0]

    def enqueue_many(self, task_type: str, payload: Any, count: int, *, trust_id: str | None = None) -> list[Task]:
        """Add `count` PENDING tasks with the same type and payload.

        `trust_id` may be left out while exactly one trust is registered.
        """
        if not task_type:
            raise ValueError("task_type must be a non-empty string")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        payload_text = payload if isinstance(payload, str) else json.dumps(payload)

        with self._lock:
            owner = self._resolve_trust_id(trust_id)
            created = []
            for _ in range(count):
                task = Task(
                    id=str(uuid.uuid4()),
                    trust_id=owner,
                    task_type=task_type,
                    payload=payload_text,
                    created_at=self._clock(),
                )
                self._tasks[task.id] = task
                created.append(task)
            self._changed.notify_all()

        log.debug("Enqueued %d %s task(s) for trust %s", count, task_type, owner)
        return created

    def tasks(
        self,
        *,
        status: TaskStatus | str | None = None,
        trust_id: str | None = None,
        task_type: str | None = None,
    ) -> list[Task]:
        """Return the tasks in the order they were enqueued, optionally filtered."""
        status_filter = TaskStatus(status) if status is not None else None
        with self._lock:
            return [
                task
                for task in self._tasks.values()
                if (status_filter is None or task.status is status_filter)
                and (trust_id is None or task.trust_id == trust_id)
                and (task_type is None or task.task_type == task_type)
            ]

    def task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def hand_out(self, trust_id: str, limit: int = MAX_TASKS_PER_POLL) -> list[Task]:
        """Mark up to `limit` of the trust's oldest PENDING tasks IN_PROGRESS and return them."""
        with self._lock:
            now = self._clock()
            candidates = (
                task
                for task in self._tasks.values()
                if task.trust_id == trust_id and task.status is TaskStatus.PENDING
            )
            oldest = heapq.nsmallest(limit, candidates, key=lambda task: task.created_at)

            handed = []
            for task in oldest:
                updated = replace(task, status=TaskStatus.IN_PROGRESS, handed_out_at=now)
                self._tasks[task.id] = updated
                handed.append(updated)
            if handed:
                self._changed.notify_all()
            return handed

    def record_result(
        self, task_id: str, trust_id: str, success: bool, result: str | None
    ) -> tuple[ResultOutcome, Task | None]:
        """Apply a reported result: COMPLETED on success, FAILED otherwise, if the task is IN_PROGRESS."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return ResultOutcome.NOT_FOUND, None
            if task.trust_id != trust_id:
                return ResultOutcome.WRONG_TRUST, task
            if task.status is not TaskStatus.IN_PROGRESS:
                return ResultOutcome.NOT_IN_PROGRESS, task

            status = TaskStatus.COMPLETED if success else TaskStatus.FAILED
            updated = replace(task, status=status, result=result, success=success, completed_at=self._clock())
            self._tasks[task_id] = updated
            self._changed.notify_all()
            return ResultOutcome.RECORDED, updated

    def recover_stale(self) -> StaleRecovery:
        """Requeue tasks IN_PROGRESS for over `stale_after_seconds`; fail them after `max_retries` retries."""
        with self._lock:
            now = self._clock()
            cutoff = now - timedelta(seconds=self.stale_after_seconds)
            requeued, failed = [], []

            for task in list(self._tasks.values()):
                if task.status is not TaskStatus.IN_PROGRESS or task.handed_out_at is None:
                    continue
                if task.handed_out_at >= cutoff:
                    continue

                if task.retries >= self.max_retries:
                    error = json.dumps({"error": f"Exceeded maximum retries ({self.max_retries})"})
                    self._tasks[task.id] = replace(
                        task, status=TaskStatus.FAILED, result=error, success=False, completed_at=now
                    )
                    failed.append(task.id)
                    log.warning("Stale task %s (%s) FAILED after %d retries", task.id, task.task_type, task.retries)
                else:
                    self._tasks[task.id] = replace(
                        task, status=TaskStatus.PENDING, handed_out_at=None, retries=task.retries + 1
                    )
                    requeued.append(task.id)
                    log.info("Stale task %s (%s) back to PENDING, retry %d", task.id, task.task_type, task.retries + 1)

            if requeued or failed:
                self._changed.notify_all()
            return StaleRecovery(requeued=tuple(requeued), failed=tuple(failed))

    def _resolve_trust_id(self, trust_id: str | None) -> str:
        known = {trust.trust_id for trust in self._trusts_by_key.values()}
        if trust_id is None:
            if len(known) != 1:
                raise ValueError(f"trust_id is required when {len(known)} trusts are registered")
            return next(iter(known))
        if trust_id not in known:
            raise ValueError(f"no trust is registered with trust_id {trust_id}")
        return trust_id

    # Waiting

    def wait_for(self, predicate: Callable[[HubStore], bool], timeout: float) -> bool:
        """Block until `predicate(store)` is true or `timeout` seconds pass; return the last value.

        Don't call it from the event loop that runs the agent under test: use wait_for_async there.
        """
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    async def wait_for_async(
        self, predicate: Callable[[HubStore], bool], timeout: float, poll_interval: float = 0.01
    ) -> bool:
        """Wait without blocking the event loop until `predicate(store)` is true or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_interval)
        return True
