"""Operator requests from the ledger, the agent's stored status and ledger pruning."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime

from ..ledger import LedgerError
from ..records import FINAL_STATES
from ..retrying import sleep_unless_woken
from ..settings import public_settings

log = logging.getLogger("console.agent")

PRUNE_INTERVAL_SECONDS = 3600.0

RECENT_RECORDS = 500
"""Finished tasks the agent keeps in memory, for the console; older ones are read from the ledger."""

CONTROL_INTERVAL_SECONDS = 0.5
"""How often the agent reads operator requests from the ledger."""


class ControlMixin:
    """Mixed into Agent: carries out requests left by the command line or an attached console."""

    async def control_loop(self) -> None:
        await self._guard("control", self._control_forever)

    async def _control_forever(self) -> None:
        last_prune = -PRUNE_INTERVAL_SECONDS
        last_status: dict[str, object] | None = None
        try:
            while not self._stopped.is_set():
                now = asyncio.get_running_loop().time()
                if now - last_prune >= PRUNE_INTERVAL_SECONDS:
                    last_prune = now
                    self._prune_ledger()

                for request in self.ledger.pending_requests():
                    applied, outcome = self.handle_request(request.action, request.task_id)
                    target = f" for task {request.task_id}" if request.task_id else ""
                    log.info("operator request %s%s: %s", request.action, target, outcome)
                    self._persist(self.ledger.finish_request, request.id, applied, outcome)

                self._mark_stuck_reports()
                self._forget_old_records()
                status = self.status()
                if status != last_status:
                    self._persist(self.ledger.write_status, status)
                    last_status = status
                await sleep_unless_woken(CONTROL_INTERVAL_SECONDS, self._wake_control)
        finally:
            if not self._closed:
                self._persist(self.ledger.write_status, self.status())

    def _forget_old_records(self) -> None:
        """Keep in memory only the newest RECENT_RECORDS finished tasks; the ledger keeps the rest."""
        finished = [
            task_id
            for task_id, record in self.tasks.items()
            if record.state in FINAL_STATES
        ]
        for task_id in finished[: max(len(finished) - RECENT_RECORDS, 0)]:
            del self.tasks[task_id]

    def _prune_ledger(self) -> None:
        try:
            pruned = self.ledger.prune(self.settings.ledger_retention_days)
            self.ledger.prune_changes()
        except LedgerError as error:
            log.error("ledger pruning failed: %s", error)
            return
        if pruned:
            log.info(
                "pruned %d delivered task(s) older than %g day(s) from the ledger",
                pruned,
                self.settings.ledger_retention_days,
            )

    def status(self) -> dict[str, object]:
        """Return what an attached console shows in its header, as JSON-ready values."""

        def when(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "pid": os.getpid(),
            "hub_url": self.settings.central_hub_api_url,
            "trust_id": self.identity.trust_id if self.identity else None,
            "trust_name": self.identity.trust_name if self.identity else None,
            "connectivity": self.connectivity.value,
            "paused": self.paused,
            "claiming": self._claiming,
            "stopped": self._stopped.is_set(),
            "stop_reason": self.stop_reason,
            "last_heartbeat_at": when(self.last_heartbeat_at),
            "last_round_trip_seconds": self.last_round_trip_seconds,
            "next_poll_at": when(self.next_poll_at),
            "hub_version": self.hub_version,
            "hub_key_fingerprint": self.hub_key_fingerprint,
            "local_key_fingerprint": self.local_key_fingerprint,
            "settings": public_settings(self.settings),
        }

    def handle_request(self, action: str, task_id: str | None) -> tuple[bool, str]:
        """Carry out one operator action by name; return whether it applied and what happened."""
        if action == "pause":
            self.pause()
            return True, "polling paused"
        if action == "resume":
            self.resume()
            return True, "polling resumed"
        if action == "poll-now":
            self.poll_now()
            return True, "polling now"
        if action == "heartbeat-now":
            self.heartbeat_now()
            return True, "sending a heartbeat now"
        if action == "retry-all-stuck":
            count = self.retry_all_stuck()
            if count == 0:
                return True, "no report is stuck; nothing to retry"
            return True, f"retrying {count} stuck report(s) now"
        if task_id is None or task_id not in self.tasks:
            return False, f"task {task_id} not found in this agent"
        state = self.tasks[task_id].state
        if action == "retry":
            if self.retry_report(task_id):
                return True, "retrying the report now"
            return False, f"nothing to retry: the task is {state} and no report is waiting for a retry"
        if action == "rerun":
            if self.rerun(task_id):
                return True, "running the handler again"
            return False, f"cannot run again: the task is {state}; only a failure not yet delivered can run again"
        return False, f"unknown action {action!r}"
