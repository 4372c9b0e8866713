"""The poll loop and the running of each task's handler."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from tenacity import RetryCallState

from ..events import (
    Connectivity,
    PollCompleted,
    PollFailed,
    PollScheduled,
    TaskFinished,
    TaskReceived,
    TaskSkipped,
    TaskStarted,
    utc_now,
)
from ..events import (
    MalformedReply as MalformedReplyEvent,
)
from ..handlers import (
    HandlerContext,
    HandlerOutcome,
    run_handler,
)
from ..hub_client import (
    AuthFailed,
    HubError,
    MalformedReply,
    PendingTask,
    PollReply,
    RateLimited,
)
from ..records import FINAL_STATES, TaskRecord, TaskState, summarize_payload
from ..retrying import sleep_unless_woken

log = logging.getLogger("console.agent")

REPORT_BACKLOG_FACTOR = 4
"""Polling stops while this many results per handler slot wait for delivery."""


class PollingMixin:
    """Mixed into Agent: claims tasks while a handler slot is free and runs them concurrently."""

    async def poll_loop(self) -> None:
        await self._guard("poll", self._poll_forever)

    async def _poll_forever(self) -> None:
        await self._wait_for_identity()
        while self._claiming:
            if self.paused:
                self.next_poll_at = None
                await sleep_unless_woken(3600.0, self._wake_poll)
                continue
            if self._free_slots() == 0:
                await self._wait_until(lambda: self._free_slots() > 0 or not self._claiming)
                continue
            if not self._hub_reachable():
                # The heartbeat probes the hub while it is offline; polling resumes with it.
                self._wake_poll.clear()
                await self._wait_until(lambda: self._hub_reachable() or not self._claiming or self._wake_poll.is_set())
                self._wake_poll.clear()

            reply = await self._poll_once()
            if reply is None:
                # Unusable, or the hub failed until a stop or pause: wait a normal interval, never spin.
                await sleep_unless_woken(self.settings.poll_interval_seconds, self._wake_poll)
                continue
            self._accept(reply)

            # Ask again soon while the hub has work, at the normal interval when it has none.
            more_waiting = bool(reply.tasks or reply.invalid)
            delay = self.settings.poll_burst_interval_seconds if more_waiting else self.settings.poll_interval_seconds
            self.next_poll_at = utc_now() + timedelta(seconds=delay)
            self._publish(PollScheduled(next_poll_at=self.next_poll_at))
            await sleep_unless_woken(delay, self._wake_poll)

    async def _wait_for_identity(self) -> None:
        """Poll only once a heartbeat has confirmed which trust this key belongs to."""
        while not self._identity_ready.is_set() and self._claiming:
            await self._wait_until(lambda: self._identity_ready.is_set() or not self._claiming)

    def _free_slots(self) -> int:
        """Count the handler slots free for new tasks.

        None are free while results pile up undelivered, so a hub that refuses
        results does not also hand out more work.
        """
        undelivered = sum(1 for record in self._open.values() if record.state is TaskState.AWAITING_REPORT)
        waiting = len(self._open) - undelivered
        if undelivered >= REPORT_BACKLOG_FACTOR * self.settings.max_concurrent_tasks:
            return 0
        return max(self.settings.max_concurrent_tasks - waiting, 0)

    async def _poll_once(self) -> PollReply | None:
        self._polling = True
        try:
            async for attempt in self._hub_retrying(
                self._wake_poll,
                keep_going=lambda: self._claiming and not self.paused,
                before_sleep=self._on_poll_retry,
                initial_seconds=self.settings.poll_interval_seconds,
            ):
                with attempt:
                    try:
                        reply = await self.client.poll()
                    except MalformedReply as error:
                        # A broken reply is reported and skipped; the next poll is a normal one.
                        self._publish(MalformedReplyEvent(endpoint=error.endpoint, reason=str(error)))
                        return None
        except HubError:
            return None  # Stopping or paused while the hub was failing.
        finally:
            self._polling = False
            self._changed.set()

        if self._poll_failing:
            self._poll_failing = False
            if self.connectivity is Connectivity.DEGRADED:
                self._update_online("polls succeed again")
        self._publish(PollCompleted(task_count=len(reply.tasks), round_trip_seconds=reply.round_trip_seconds))
        return reply

    def _on_poll_retry(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else None
        assert isinstance(error, HubError)
        self._poll_failing = True
        if isinstance(error, (AuthFailed, RateLimited)):
            self._note_hub_failure(error, 1)
        elif self.connectivity is Connectivity.ONLINE:
            self._set_connectivity(Connectivity.DEGRADED, f"polls fail: {error}")
        self.next_poll_at = utc_now() + timedelta(seconds=wait or 0)
        self._publish(PollFailed(error=str(error), status_code=error.status_code, retry_in_seconds=wait))

    def _accept(self, reply: PollReply) -> None:
        """Take every task of a poll reply: run it, report it as invalid, or redeliver its result."""
        if not self._check_identity(reply.identity):
            handed_out = [task.id for task in reply.tasks]
            log.error("not running %d task(s) handed out to a mismatched identity: %s", len(handed_out), handed_out)
            return

        for invalid in reply.invalid:
            self._publish(MalformedReplyEvent(endpoint="pending", reason=invalid.reason))
            if invalid.task_id is not None and invalid.task_id not in self.tasks:
                record = self._new_record(invalid.task_id, invalid.task_type or "unknown", None)
                self._finish(record, HandlerOutcome.failed(f"Invalid task from the hub: {invalid.reason}"))

        for task in reply.tasks:
            try:
                existing = self.tasks.get(task.id) or self._from_ledger(task.id)
                if existing is None:
                    self._start(task)
                else:
                    self._handle_repeat(existing)
            except Exception:
                # One task that breaks intake must not drop the others of the same poll.
                log.exception("taking task %s (%s) failed", task.id, task.task_type[:100])

    def _new_record(self, task_id: str, task_type: str, payload: str | None) -> TaskRecord:
        summary = "not readable" if payload is None else summarize_payload(payload)
        record = TaskRecord(task_id=task_id, task_type=task_type, payload_summary=summary, received_at=utc_now())
        self.tasks[task_id] = record
        self._open[task_id] = record
        self._persist(self.ledger.record_received, record, payload)
        self._publish(TaskReceived(task_id=task_id, task_type=task_type))
        return record

    def _from_ledger(self, task_id: str) -> TaskRecord | None:
        """Find a task delivered long ago and no longer in memory."""
        stored = self.ledger.load(task_id)
        if stored is None:
            return None
        record = stored[0]
        self.tasks[task_id] = record
        if record.state not in FINAL_STATES:
            self._open[task_id] = record
        return record

    def _handle_repeat(self, record: TaskRecord) -> None:
        """Handle a task id the hub handed out again (stale recovery) without running it twice."""
        if record.state in (TaskState.QUEUED, TaskState.RUNNING):
            reason = f"already {record.state}; not started twice"
        elif record.task_id in self._deliveries:
            reason = "result already being reported"
        else:
            reason = "already finished; sending the stored result again"
            self._set_state(record, TaskState.AWAITING_REPORT)
            record.rejection = None
            self._persist(self.ledger.record_state, record)
            self._outbox.put_nowait(record.task_id)
        self._publish(TaskSkipped(task_id=record.task_id, task_type=record.task_type, reason=reason))

    def _start(self, task: PendingTask) -> None:
        record = self._new_record(task.id, task.task_type, task.payload)
        self._spawn_handler(record, task.payload)

    def _spawn_handler(self, record: TaskRecord, payload: str) -> None:
        # The run is counted in the ledger before the handler may start, so a handler that kills the
        # agent is not started again and again (see MAX_HANDLER_RUNS). A run is counted when the task
        # is queued for a handler slot: the tasks of one poll then share one commit.
        counted = self._persist_and_track(self.ledger.record_run, record)
        self._handler_tasks[record.task_id] = asyncio.create_task(
            self._run_task(record, payload, counted), name=f"task-{record.task_id}"
        )

    async def _run_task(self, record: TaskRecord, payload: str, counted: asyncio.Future[None]) -> None:
        try:
            # Shielded: a cancelled task must not cancel the future the ledger writer resolves.
            await asyncio.shield(counted)
            async with self._slots:
                self._set_state(record, TaskState.RUNNING)
                record.started_at = utc_now()
                self._persist(self.ledger.record_started, record)
                self._publish(TaskStarted(task_id=record.task_id, task_type=record.task_type))

                try:
                    outcome = await run_handler(
                        self.registry,
                        self.settings.enabled_task_types,
                        HandlerContext(record.task_id, record.task_type),
                        payload,
                        self.settings.handler_timeout_seconds,
                        self.payload_decoder,
                        self.settings.max_result_chars,
                    )
                except Exception as error:
                    # run_handler turns handler errors into outcomes; this catches a bug around it,
                    # so the task still gets a result instead of hanging in "running".
                    log.exception("running task %s (%s) failed unexpectedly", record.task_id, record.task_type)
                    outcome = HandlerOutcome.failed(f"Internal error in trust-console: {type(error).__name__}")
            self._finish(record, outcome)
        finally:
            self._handler_tasks.pop(record.task_id, None)

    def _finish(self, record: TaskRecord, outcome: HandlerOutcome) -> None:
        record.finished_at = utc_now()
        record.started_at = record.started_at or record.finished_at
        record.success = outcome.success
        record.result = outcome.result
        record.error = outcome.error
        self._set_state(record, TaskState.AWAITING_REPORT)
        record.report_attempts = []
        record.stuck = False
        # The result reaches the disk before the first report attempt, so a crash cannot lose it.
        self._persist(self.ledger.write_finished, record, durable=True, then=lambda: self._finished(record, outcome))

    def _finished(self, record: TaskRecord, outcome: HandlerOutcome) -> None:
        """Announce a result once it is in the ledger, and queue its report."""
        self._publish(
            TaskFinished(
                task_id=record.task_id,
                task_type=record.task_type,
                success=outcome.success,
                duration_seconds=record.duration_seconds or 0.0,
                error=outcome.error,
                # Announced once the result is committed, but dated when the handler returned.
                at=record.finished_at or utc_now(),
            )
        )
        # An operator may have run the task again in the meantime; then the new result is reported.
        if record.state is TaskState.AWAITING_REPORT and record.task_id not in self._handler_tasks:
            self._outbox.put_nowait(record.task_id)

    def can_rerun(self, task_id: str) -> bool:
        """Check whether a failed task can run again: its failure is not delivered yet."""
        record = self.tasks.get(task_id)
        return (
            record is not None
            and record.state is TaskState.AWAITING_REPORT
            and record.success is False
            and task_id not in self._handler_tasks
        )

    def rerun(self, task_id: str) -> bool:
        """Run a failed task's handler again and report the new result instead; False if not applicable."""
        if not self.can_rerun(task_id):
            return False
        stored = self.ledger.load(task_id)
        payload = stored[1] if stored else None
        if payload is None:
            log.warning("task %s cannot run again: its payload is no longer in the ledger", task_id)
            return False

        delivery = self._deliveries.pop(task_id, None)
        if delivery is not None:
            delivery.cancel()
        self._retry_now.pop(task_id, None)
        record = self.tasks[task_id]
        self._set_state(record, TaskState.QUEUED)
        record.success = None
        record.error = None
        self._persist(self.ledger.record_state, record)
        log.info("task %s (%s) run again by operator", task_id, record.task_type)
        # Like an operator's retry, the new result's report does not wait for a Retry-After hold.
        self._operator_retries.add(task_id)
        self._spawn_handler(record, payload)
        return True
