"""A view of an agent running in another process on the same STATE_DIR, for `trust-console attach`.

AttachedAgent offers the parts of Agent's interface the console uses. It
reads task records and the agent's status from the ledger every half second,
publishes the same events the console already handles, and turns operator
actions into requests in the ledger, which the running agent carries out
within a second. It never talks to the hub and needs no API key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from .events import (
    AgentEvent,
    AgentStopped,
    Connectivity,
    ConnectivityChanged,
    EventBus,
    HeartbeatOk,
    IdentityConfirmed,
    Paused,
    Resumed,
    TaskUpdated,
)
from .hub_client import Identity
from .ledger import ACTIVE_STATES, AgentLock, Ledger, LedgerError
from .records import TaskRecord, TaskState
from .settings import Settings

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_SECONDS = 0.5
RECENT_RECORDS = 500


class NoAgentRunning(LedgerError):
    """No agent holds the lock on the STATE_DIR, so there is nothing to attach to."""


class AttachedAgent:
    """The console's window on an agent that runs in another process."""

    attached = True

    def __init__(self, state_dir: Path) -> None:
        if not (state_dir / "ledger.sqlite3").exists() or not AgentLock.is_held(state_dir):
            raise NoAgentRunning(
                f"no trust-console agent is running on STATE_DIR {state_dir}; start one with"
                " `trust-console --headless`, or pass the --state-dir it uses"
            )
        self.state_dir = state_dir
        self.ledger = Ledger(state_dir)
        self.bus = EventBus()
        self.tasks: dict[str, TaskRecord] = {}
        self.exit_code = 0
        self.stop_reason: str | None = None

        self.identity: Identity | None = None
        self.connectivity = Connectivity.CONNECTING
        self.paused = False
        self.claiming = True
        self.last_heartbeat_at: datetime | None = None
        self.last_round_trip_seconds: float | None = None
        self.next_poll_at: datetime | None = None
        self.hub_version: str | None = None
        self.hub_key_fingerprint: str | None = None
        self.local_key_fingerprint: str | None = None
        self.settings: Settings | None = None

        self._closed = False
        self._agent_gone = False
        self._stopped = asyncio.Event()
        self._seq = self.ledger.last_change()
        self._load_tasks()
        self._apply_status(publish=False)

    # State.

    def _load_tasks(self) -> None:
        for record in reversed(self.ledger.records(limit=RECENT_RECORDS)):
            self.tasks[record.task_id] = record
        for record, _, _ in self.ledger.active():
            self.tasks[record.task_id] = record

    def _apply_status(self, publish: bool = True) -> None:
        stored = self.ledger.read_status()
        if stored is None:
            return
        status, _ = stored
        events: list[AgentEvent] = []

        trust_id, trust_name = status.get("trust_id"), status.get("trust_name")
        if isinstance(trust_id, str) and isinstance(trust_name, str) and self.identity is None:
            self.identity = Identity(trust_id, trust_name)
            events.append(IdentityConfirmed(trust_id=trust_id, trust_name=trust_name))

        connectivity = Connectivity(str(status.get("connectivity", "connecting")))
        if connectivity is not self.connectivity:
            events.append(ConnectivityChanged(previous=self.connectivity, current=connectivity, reason="reported by the agent"))
            self.connectivity = connectivity

        paused = bool(status.get("paused"))
        if paused != self.paused:
            events.append(Paused() if paused else Resumed())
            self.paused = paused

        heartbeat = _time(status.get("last_heartbeat_at"))
        if heartbeat is not None and heartbeat != self.last_heartbeat_at:
            round_trip = status.get("last_round_trip_seconds")
            events.append(HeartbeatOk(round_trip_seconds=float(round_trip) if isinstance(round_trip, (int, float)) else 0.0))
        self.last_heartbeat_at = heartbeat
        round_trip = status.get("last_round_trip_seconds")
        self.last_round_trip_seconds = float(round_trip) if isinstance(round_trip, (int, float)) else None
        self.next_poll_at = _time(status.get("next_poll_at"))
        self.claiming = bool(status.get("claiming", True))
        if status.get("stopped"):
            self.stop_reason = _text(status.get("stop_reason")) or "the agent stopped"
        self.hub_version = _text(status.get("hub_version"))
        self.hub_key_fingerprint = _text(status.get("hub_key_fingerprint"))
        self.local_key_fingerprint = _text(status.get("local_key_fingerprint"))
        settings = status.get("settings")
        if isinstance(settings, dict):
            # Secrets are never stored in the status, so the settings are built without validation.
            self.settings = Settings.model_construct(**settings)

        if publish:
            for event in events:
                self.bus.publish(event)

    @property
    def in_flight(self) -> int:
        return sum(1 for record in self.tasks.values() if record.state in ACTIVE_STATES)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    # Following the ledger.

    def loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        return {"follow": self.follow_loop}

    async def follow_loop(self) -> None:
        """Reload changed tasks and the agent's status until the console detaches or the agent stops."""
        while not self._stopped.is_set():
            try:
                self.refresh()
            except LedgerError as error:
                log.error("reading the ledger failed: %s", error)
            try:
                async with asyncio.timeout(FOLLOW_INTERVAL_SECONDS):
                    await self._stopped.wait()
            except TimeoutError:
                pass

    def refresh(self) -> None:
        """Read what changed in the ledger since the last refresh and publish it.

        NOTE: the ledger stores task states and the agent's status, not each event, so an
        attached console's event log and reply counts per endpoint stay nearly empty.
        """
        if self._closed:
            return
        seq, changed = self.ledger.changes_since(self._seq)
        self._seq = seq
        for task_id in sorted(changed):
            stored = self.ledger.load(task_id)
            if stored is None:
                self.tasks.pop(task_id, None)
                continue
            record = stored[0]
            self.tasks[task_id] = record
            self.bus.publish(TaskUpdated(task_id=task_id, task_type=record.task_type))
        self._apply_status()

        # A killed agent writes no final status, so the released lock is the sure sign it stopped.
        if not AgentLock.is_held(self.state_dir) and not self._agent_gone:
            self._agent_gone = True
            self.stop_reason = self.stop_reason or "the agent stopped"
            if self.connectivity is not Connectivity.STOPPED:
                previous, self.connectivity = self.connectivity, Connectivity.STOPPED
                self.bus.publish(ConnectivityChanged(previous=previous, current=self.connectivity, reason=self.stop_reason))
            self.bus.publish(AgentStopped(reason=self.stop_reason))

    # Operator actions, carried out by the running agent.

    def _request(self, action: str, task_id: str | None = None) -> bool:
        try:
            self.ledger.add_request(action, task_id)
        except LedgerError as error:
            log.error("could not leave the %s request for task %s: %s", action, task_id or "-", error)
            return False
        return True

    def pause(self) -> None:
        self._request("pause")

    def resume(self) -> None:
        self._request("resume")

    def poll_now(self) -> None:
        self._request("poll-now")

    def heartbeat_now(self) -> None:
        self._request("heartbeat-now")

    def can_retry_report(self, task_id: str) -> bool:
        record = self.tasks.get(task_id)
        return record is not None and record.state is TaskState.AWAITING_REPORT and bool(record.report_attempts)

    def retry_report(self, task_id: str) -> bool:
        return self.can_retry_report(task_id) and self._request("retry", task_id)

    def stuck_task_ids(self) -> list[str]:
        return [task_id for task_id, record in self.tasks.items() if record.stuck and record.state is TaskState.AWAITING_REPORT]

    def retry_all_stuck(self) -> int:
        stuck = len(self.stuck_task_ids())
        return stuck if stuck and self._request("retry-all-stuck") else 0

    def can_rerun(self, task_id: str) -> bool:
        record = self.tasks.get(task_id)
        return record is not None and record.state is TaskState.AWAITING_REPORT and record.success is False

    def rerun(self, task_id: str) -> bool:
        return self.can_rerun(task_id) and self._request("rerun", task_id)

    # Detaching: the agent itself goes on.

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason
        self._stopped.set()

    async def close(self) -> None:
        self._stopped.set()
        if not self._closed:
            self._closed = True
            self.ledger.close()


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
