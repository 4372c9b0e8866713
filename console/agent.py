"""The trust agent: heartbeat, poll, run handlers and report, each on its own schedule.

Three loops share one hub client. The heartbeat loop never waits for task
work, the poll loop claims tasks only while a handler slot is free, handlers
run concurrently up to MAX_CONCURRENT_TASKS, and the report loop delivers each
result with retries of its own so one slow delivery holds up no other.
The console and the headless runner host the same Agent and watch its events.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol
from datetime import datetime, timedelta

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never

from .events import (
    AgentEvent,
    AgentStopped,
    Connectivity,
    ConnectivityChanged,
    DrainStarted,
    EventBus,
    HeartbeatFailed,
    HeartbeatOk,
    IdentityConfirmed,
    IdentityMismatch,
    MalformedReply as MalformedReplyEvent,
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
    TaskStarted,
    utc_now,
)
from .handlers import (
    HandlerContext,
    HandlerOutcome,
    HandlerRegistry,
    PayloadDecoder,
    default_registry,
    run_handler,
)
from .hub_client import (
    AuthFailed,
    HubClient,
    HeartbeatReply,
    HubError,
    Identity,
    MalformedReply,
    PendingTask,
    PollReply,
    RateLimited,
    ResultRejected,
    UnexpectedStatus,
)
from .ledger import AgentLock, Ledger, LedgerError, prepare_state_dir
from .records import ReportAttempt, TaskRecord, TaskState, summarize_payload
from .retrying import sleep_unless_woken, wait_for_hub
from .settings import Settings, public_settings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIGURATION = 2

MAX_HANDLER_RUNS = 2
"""Handler starts allowed per task across agent restarts, so a task that crashes the agent cannot loop."""

PRUNE_INTERVAL_SECONDS = 3600.0

CONTROL_INTERVAL_SECONDS = 0.5
"""How often the agent reads operator requests from the ledger."""

RECENT_RECORDS = 500
"""Delivered tasks loaded from the ledger at start, for the console; older ones stay on disk only."""

CLIENT_REBUILD_AFTER_FAILURES = 3


class HealthSource(Protocol):
    """Where heartbeats get their health snapshot from."""

    def snapshot(self) -> dict[str, Any] | None:
        """Return the latest snapshot if it is fresh, else None so the heartbeat goes without a body."""

    async def run(self) -> None:
        """Collect snapshots until cancelled."""


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, HubError) and not isinstance(error, ResultRejected)


class Agent:
    """One trust's agent; create it, then run `run()` or host its loops as workers."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: HandlerRegistry | None = None,
        bus: EventBus | None = None,
        client: HubClient | None = None,
        payload_decoder: PayloadDecoder | None = None,
        health: HealthSource | None = None,
        local_key_fingerprint: str | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        self.bus = bus or EventBus()
        self.payload_decoder = payload_decoder
        self.health = health
        self.local_key_fingerprint = local_key_fingerprint
        self.hub_key_fingerprint: str | None = None
        self._fingerprint_warned = False

        # One agent per STATE_DIR: take the lock before touching the ledger.
        self._lock = AgentLock(prepare_state_dir(settings.state_dir))
        self._lock.acquire()
        try:
            self.ledger = Ledger(settings.state_dir)
        except LedgerError:
            self._lock.release()
            raise
        self.client = client or HubClient(settings)

        self.tasks: dict[str, TaskRecord] = {}
        self.identity: Identity | None = None
        self.hub_version: str | None = None
        self.connectivity = Connectivity.CONNECTING
        self.paused = False
        self.last_heartbeat_at: datetime | None = None
        self.last_round_trip_seconds: float | None = None
        self.next_poll_at: datetime | None = None
        self.stop_reason: str | None = None
        self.exit_code = EXIT_OK

        self._slots = asyncio.Semaphore(settings.max_concurrent_tasks)
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._claiming = True
        self._polling = False
        self._heartbeat_failures = 0
        self._poll_failing = False
        self._identity_ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._wake_poll = asyncio.Event()
        self._wake_heartbeat = asyncio.Event()
        self._wake_control = asyncio.Event()
        self._changed = asyncio.Event()
        self._handler_tasks: dict[str, asyncio.Task[None]] = {}
        self._deliveries: dict[str, asyncio.Task[None]] = {}
        self._retry_now: dict[str, asyncio.Event] = {}
        self._rebuild_client = False
        self._closed = False
        self.running_loops: set[str] = set()
        """Names of the loops running now; a loop missing here while the agent runs has died."""
        self._resume_plan = self._load_ledger()

    # Operator actions.

    def pause(self) -> None:
        """Stop claiming new tasks; heartbeats, running handlers and reports go on."""
        if not self.paused:
            self.paused = True
            self._publish(Paused())

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._publish(Resumed())
            self._wake_poll.set()

    def poll_now(self) -> None:
        self._wake_poll.set()

    def heartbeat_now(self) -> None:
        self._wake_heartbeat.set()

    def can_retry_report(self, task_id: str) -> bool:
        """Check whether the task's result is waiting for its next report attempt."""
        record = self.tasks.get(task_id)
        return (
            record is not None
            and record.state is TaskState.AWAITING_REPORT
            and bool(record.report_attempts)
            and task_id in self._retry_now
        )

    def retry_report(self, task_id: str) -> bool:
        """Send a failed report again now instead of after its backoff; False if not applicable."""
        if not self.can_retry_report(task_id):
            return False
        log.info("report retry requested by operator for task %s", task_id)
        self._retry_now[task_id].set()
        self._changed.set()
        return True

    def stuck_task_ids(self) -> list[str]:
        return [task_id for task_id, record in self.tasks.items() if record.stuck and record.state is TaskState.AWAITING_REPORT]

    def retry_all_stuck(self) -> int:
        """Retry every stuck report now; return how many were woken."""
        return sum(self.retry_report(task_id) for task_id in self.stuck_task_ids())

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
        record.state = TaskState.QUEUED
        record.success = None
        record.error = None
        self._persist(self.ledger.record_state, record)
        log.info("task %s (%s) run again by operator", task_id, record.task_type)
        self._spawn_handler(record, payload)
        return True

    @property
    def in_flight(self) -> int:
        """Tasks received but not yet reported or rejected."""
        return sum(
            1
            for record in self.tasks.values()
            if record.state in (TaskState.QUEUED, TaskState.RUNNING, TaskState.AWAITING_REPORT)
        )

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    @property
    def claiming(self) -> bool:
        """False once a drain or stop has begun."""
        return self._claiming

    def oldest_undelivered_seconds(self) -> float | None:
        """Age of the oldest finished result the hub has not accepted yet, or None."""
        finished = [
            record.finished_at
            for record in self.tasks.values()
            if record.state is TaskState.AWAITING_REPORT and record.finished_at is not None
        ]
        if not finished:
            return None
        return (utc_now() - min(finished)).total_seconds()

    # Running.

    def loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """Name every loop the agent needs; a host runs each one as a worker or task until the agent stops."""
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "heartbeat": self.heartbeat_loop,
            "poll": self.poll_loop,
            "report": self.report_loop,
            "control": self.control_loop,
        }
        if self.health is not None:
            loops["health"] = self.health_loop
        return loops

    async def run(self) -> int:
        """Run every loop until the agent stops; return the exit code."""
        try:
            async with asyncio.TaskGroup() as group:
                for name, loop in self.loops().items():
                    group.create_task(loop(), name=f"agent-{name}")
        finally:
            await self.close()
        return self.exit_code

    async def health_loop(self) -> None:
        """Run the health source's collector while the agent runs."""
        await self._guard("health", self._collect_health)

    async def _collect_health(self) -> None:
        if self.health is None:
            return
        collector = asyncio.create_task(self.health.run(), name="health-collector")
        try:
            await self._stopped.wait()
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)

    async def close(self) -> None:
        """Cancel whatever still runs, close the hub client and release STATE_DIR.

        Finished results stay in the ledger and are delivered at the next start.
        """
        if self._closed:
            return
        self._closed = True
        self._stopped.set()
        pending = [*self._handler_tasks.values(), *self._deliveries.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.client.aclose()
        self.ledger.close()
        self._lock.release()

    async def drain(self, timeout_seconds: float | None = None) -> bool:
        """Stop claiming, let in-flight tasks finish and report, then stop; True if all were delivered.

        A poll already in flight completes and its tasks run too. Heartbeats go
        on until the drain ends.
        """
        timeout = self.settings.drain_timeout_seconds if timeout_seconds is None else timeout_seconds
        self._claiming = False
        self._wake_poll.set()
        self._publish(DrainStarted(in_flight=self.in_flight, timeout_seconds=timeout))

        try:
            async with asyncio.timeout(timeout):
                await self._wait_until(self._is_idle)
            drained = True
        except TimeoutError:
            drained = False
            log.warning("drain timed out after %g s with %d task(s) undelivered", timeout, self.in_flight)

        self.stop("drained" if drained else "drain timed out")
        return drained

    def stop(self, reason: str, exit_code: int | None = None) -> None:
        """Stop every loop now; running handlers and deliveries are cancelled by `close()`."""
        if self._stopped.is_set():
            return
        self.stop_reason = reason
        if exit_code is not None:
            self.exit_code = exit_code
        self._claiming = False
        self._stopped.set()
        for wake in (self._wake_poll, self._wake_heartbeat, self._wake_control, *self._retry_now.values()):
            wake.set()
        self._outbox.put_nowait(None)
        self._set_connectivity(Connectivity.STOPPED, reason)
        self._publish(AgentStopped(reason=reason))

    def _persist(self, write: Callable[..., None], *arguments: object) -> None:
        """Write to the ledger; on failure log it and go on, since the record is still in memory."""
        try:
            write(*arguments)
        except LedgerError as error:
            task_ids = [
                argument.task_id if isinstance(argument, TaskRecord) else argument
                for argument in arguments
                if isinstance(argument, (TaskRecord, str))
            ]
            log.error("ledger write failed for task %s: %s", task_ids[0] if task_ids else "-", error)

    def _load_ledger(self) -> list[tuple[TaskRecord, str | None, int]]:
        """Load recent and unfinished tasks from the ledger; return the unfinished ones to resume."""
        active = self.ledger.active()
        active_ids = {record.task_id for record, _, _ in active}
        for record in reversed(self.ledger.records(limit=RECENT_RECORDS)):
            if record.task_id not in active_ids:
                self.tasks[record.task_id] = record
        for record, _, _ in active:
            self.tasks[record.task_id] = record
        if active:
            log.info("ledger has %d unfinished task(s) from an earlier run; resuming them", len(active))
        return active

    def _resume(self) -> None:
        """Deliver stored results, and run again tasks whose handler an earlier stop interrupted."""
        plan, self._resume_plan = self._resume_plan, []
        for record, payload, runs in plan:
            if record.state is TaskState.AWAITING_REPORT:
                self._outbox.put_nowait(record.task_id)
            elif payload is None or runs >= MAX_HANDLER_RUNS:
                outcome = HandlerOutcome.failed(
                    f"Handler interrupted by agent stops {runs} time(s); not run again"
                )
                self._finish(record, outcome)
            else:
                if runs:
                    log.warning("task %s (%s) was interrupted by a stop; running it again", record.task_id, record.task_type)
                record.state = TaskState.QUEUED
                self._spawn_handler(record, payload)

    def _is_idle(self) -> bool:
        return not self._polling and self.in_flight == 0

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._changed.clear()
            await self._changed.wait()

    def _publish(self, event: AgentEvent) -> None:
        self._changed.set()
        self.bus.publish(event)

    def _hub_reachable(self) -> bool:
        return self.connectivity not in (Connectivity.OFFLINE, Connectivity.AUTH_FAILED)

    def _set_connectivity(self, state: Connectivity, reason: str) -> None:
        if state is self.connectivity:
            return
        previous, self.connectivity = self.connectivity, state
        self._publish(ConnectivityChanged(previous=previous, current=state, reason=reason))

    def _hub_retrying(
        self,
        wake: asyncio.Event,
        keep_going: Callable[[], bool],
        before_sleep: Callable[[RetryCallState], None],
        initial_seconds: float,
        wait_for_heartbeat: bool = True,
    ) -> AsyncRetrying:
        """Build the retry policy shared by the heartbeat, poll and report paths.

        With `wait_for_heartbeat`, a retry also waits while the hub is offline or
        rejects the key, so during an outage only the heartbeat probes the hub
        instead of every loop and every undelivered result.
        """

        async def sleep(seconds: float) -> None:
            woken = await sleep_unless_woken(seconds, wake)
            if wait_for_heartbeat and not woken:
                await self._wait_until(lambda: self._hub_reachable() or self._stopped.is_set() or wake.is_set())
                wake.clear()

        return AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            wait=wait_for_hub(
                initial_seconds=initial_seconds,
                max_seconds=self.settings.hub_backoff_max_seconds,
                auth_retry_seconds=self.settings.auth_retry_seconds,
            ),
            stop=lambda retry_state: not keep_going(),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    async def _guard(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run a loop's body again after an unexpected error, so one bug cannot stop the agent."""
        self.running_loops.add(name)
        try:
            while not self._stopped.is_set():
                try:
                    await body()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s loop failed unexpectedly; restarting it in 1 s", name)
                    await asyncio.sleep(1.0)
        finally:
            self.running_loops.discard(name)

    # Operator requests left in the ledger by the command line or another console.

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
                    log.info("operator request %s for task %s: %s", request.action, request.task_id or "-", outcome)
                    self._persist(self.ledger.finish_request, request.id, applied, outcome)

                status = self.status()
                if status != last_status:
                    self._persist(self.ledger.write_status, status)
                    last_status = status
                await sleep_unless_woken(CONTROL_INTERVAL_SECONDS, self._wake_control)
        finally:
            if not self._closed:
                self._persist(self.ledger.write_status, self.status())

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
            return count > 0, f"retrying {count} stuck report(s) now"
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

    # Heartbeat.

    async def heartbeat_loop(self) -> None:
        await self._guard("heartbeat", self._heartbeat_forever)

    async def _heartbeat_forever(self) -> None:
        while not self._stopped.is_set():
            await self._heartbeat_once()
            await sleep_unless_woken(self.settings.heartbeat_interval_seconds, self._wake_heartbeat)

    async def _heartbeat_once(self) -> None:
        try:
            async for attempt in self._hub_retrying(
                self._wake_heartbeat,
                keep_going=lambda: not self._stopped.is_set(),
                before_sleep=self._on_heartbeat_retry,
                initial_seconds=self.settings.heartbeat_interval_seconds,
                wait_for_heartbeat=False,
            ):
                with attempt:
                    if self._rebuild_client:
                        self._rebuild_client = False
                        log.info("no hub request succeeded for %d heartbeats; rebuilding the HTTP client", self._heartbeat_failures)
                        await self.client.rebuild()
                    reply = await self._send_heartbeat()
        except HubError:
            return  # Only reached when the agent is stopping.

        self._heartbeat_failures = 0
        self.last_heartbeat_at = utc_now()
        self.last_round_trip_seconds = reply.round_trip_seconds
        self._note_hub_info(reply.hub_version, reply.aes_key_fingerprint)
        self._check_identity(reply.identity)
        if not self._stopped.is_set():
            self._update_online("heartbeat accepted")
        self._publish(HeartbeatOk(round_trip_seconds=reply.round_trip_seconds))

    async def _send_heartbeat(self) -> HeartbeatReply:
        """Send one heartbeat with a fresh health snapshot, or without one if the hub rejects it."""
        snapshot = self.health.snapshot() if self.health is not None else None
        try:
            return await self.client.heartbeat(snapshot)
        except UnexpectedStatus as error:
            if error.status_code != 422 or snapshot is None:
                raise
            # The heartbeat must still count, so it goes again once without the snapshot.
            log.warning("hub rejected the health snapshot (%s); sending the heartbeat without it", error)
            return await self.client.heartbeat(None)

    def _note_hub_info(self, hub_version: str | None, fingerprint: str | None) -> None:
        """Log the hub's version when it changes, and warn once when its key is not ours."""
        if hub_version != self.hub_version and hub_version is not None:
            log.info("hub version %s", hub_version)
        self.hub_version = hub_version
        self.hub_key_fingerprint = fingerprint
        local = self.local_key_fingerprint
        if fingerprint and local and fingerprint != local and not self._fingerprint_warned:
            self._fingerprint_warned = True
            log.warning(
                "the hub's AES key fingerprint %s differs from this trust's %s: payloads will fail to decrypt;"
                " check AES_KEY_BASE64",
                fingerprint,
                local,
            )

    def _on_heartbeat_retry(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else None
        self._heartbeat_failures += 1
        if self._heartbeat_failures % CLIENT_REBUILD_AFTER_FAILURES == 0 and not isinstance(error, AuthFailed):
            self._rebuild_client = True
        assert isinstance(error, HubError)
        self._note_hub_failure(error, self._heartbeat_failures)
        self._publish(HeartbeatFailed(error=str(error), status_code=error.status_code, retry_in_seconds=wait))

    def _note_hub_failure(self, error: HubError, consecutive: int) -> None:
        if isinstance(error, AuthFailed):
            self._set_connectivity(
                Connectivity.AUTH_FAILED,
                f"the hub rejected the API key ({error.status_code}): check TRUST_API_KEY and TRUST_API_KEY_HEADER"
                f" (now {self.settings.trust_api_key_header!r})",
            )
        elif isinstance(error, RateLimited):
            self._set_connectivity(Connectivity.DEGRADED, "the hub is rate limiting this trust")
        elif consecutive >= 2:
            self._set_connectivity(Connectivity.OFFLINE, str(error))
        else:
            self._set_connectivity(Connectivity.DEGRADED, str(error))

    def _update_online(self, reason: str) -> None:
        if self._poll_failing:
            self._set_connectivity(Connectivity.DEGRADED, "heartbeats succeed but polls fail")
        else:
            self._set_connectivity(Connectivity.ONLINE, reason)

    def _check_identity(self, identity: Identity) -> bool:
        """Record the trust's identity from a reply; stop the agent on a mismatch. True if it matches."""
        expected = self.settings.expected_trust_id
        if expected is not None and identity.trust_id.lower() != str(expected).lower():
            if not self._stopped.is_set():
                self._publish(
                    IdentityMismatch(
                        expected_trust_id=str(expected), trust_id=identity.trust_id, trust_name=identity.trust_name
                    )
                )
                self.stop("identity mismatch", exit_code=EXIT_CONFIGURATION)
            return False

        if self.identity is None:
            self.identity = identity
            self._publish(IdentityConfirmed(trust_id=identity.trust_id, trust_name=identity.trust_name))
            self._identity_ready.set()
        return True

    # Poll.

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
        waiting = sum(1 for record in self.tasks.values() if record.state in (TaskState.QUEUED, TaskState.RUNNING))
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
            existing = self.tasks.get(task.id) or self._from_ledger(task.id)
            if existing is None:
                self._start(task)
            else:
                self._handle_repeat(existing)

    def _new_record(self, task_id: str, task_type: str, payload: str | None) -> TaskRecord:
        summary = "not readable" if payload is None else summarize_payload(payload)
        record = TaskRecord(task_id=task_id, task_type=task_type, payload_summary=summary, received_at=utc_now())
        self.tasks[task_id] = record
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
        return record

    def _handle_repeat(self, record: TaskRecord) -> None:
        """Handle a task id the hub handed out again (stale recovery) without running it twice."""
        if record.state in (TaskState.QUEUED, TaskState.RUNNING):
            reason = f"already {record.state}; not started twice"
        elif record.task_id in self._deliveries:
            reason = "result already being reported"
        else:
            reason = "already finished; sending the stored result again"
            record.state = TaskState.AWAITING_REPORT
            record.rejection = None
            self._persist(self.ledger.record_state, record)
            self._outbox.put_nowait(record.task_id)
        self._publish(TaskSkipped(task_id=record.task_id, task_type=record.task_type, reason=reason))

    def _start(self, task: PendingTask) -> None:
        record = self._new_record(task.id, task.task_type, task.payload)
        self._spawn_handler(record, task.payload)

    def _spawn_handler(self, record: TaskRecord, payload: str) -> None:
        self._handler_tasks[record.task_id] = asyncio.create_task(
            self._run_task(record, payload), name=f"task-{record.task_id}"
        )

    async def _run_task(self, record: TaskRecord, payload: str) -> None:
        try:
            async with self._slots:
                record.state = TaskState.RUNNING
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
        record.state = TaskState.AWAITING_REPORT
        record.report_attempts = []
        record.stuck = False
        # The result reaches the ledger before the first report attempt, so a crash cannot lose it.
        self._persist(self.ledger.record_finished, record)
        duration = record.duration_seconds or 0.0
        self._publish(
            TaskFinished(
                task_id=record.task_id,
                task_type=record.task_type,
                success=outcome.success,
                duration_seconds=duration,
                error=outcome.error,
            )
        )
        self._outbox.put_nowait(record.task_id)

    # Report.

    async def report_loop(self) -> None:
        await self._guard("report", self._report_forever)

    async def _report_forever(self) -> None:
        self._resume()
        while not self._stopped.is_set():
            task_id = await self._outbox.get()
            if task_id is None or task_id in self._deliveries:
                continue
            self._deliveries[task_id] = asyncio.create_task(self._deliver(task_id), name=f"report-{task_id}")

    async def _deliver(self, task_id: str) -> None:
        record = self.tasks[task_id]
        retry_now = self._retry_now.setdefault(task_id, asyncio.Event())

        def before_sleep(retry_state: RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            wait = retry_state.next_action.sleep if retry_state.next_action else None
            assert isinstance(error, HubError)
            self._check_stuck(record)
            self._publish(
                ReportFailed(
                    task_id=task_id,
                    task_type=record.task_type,
                    attempt=retry_state.attempt_number,
                    error=str(error),
                    status_code=error.status_code,
                    retry_in_seconds=wait,
                )
            )

        try:
            async for attempt in self._hub_retrying(
                retry_now,
                keep_going=lambda: not self._stopped.is_set(),
                before_sleep=before_sleep,
                initial_seconds=1.0,
            ):
                with attempt:
                    try:
                        accepted = await self.client.send_result(task_id, bool(record.success), record.result)
                    except HubError as error:
                        self._add_attempt(record, ReportAttempt(utc_now(), error.status_code, str(error)))
                        raise
        except ResultRejected as error:
            record.state = TaskState.REJECTED
            record.rejection = f"{error.status_code}: {error}"
            if error.status_code == 409 and any(attempt.status_code is None for attempt in record.report_attempts):
                # An earlier attempt got no reply, so the hub may well have recorded that one.
                record.rejection += " (an earlier attempt got no reply and may have been recorded)"
            self._persist(self.ledger.record_rejected, record)
            self._publish(
                ReportFailed(
                    task_id=task_id,
                    task_type=record.task_type,
                    attempt=len(record.report_attempts),
                    error=str(error),
                    status_code=error.status_code,
                    final=True,
                )
            )
            return
        except HubError:
            return  # Stopping; the result stays undelivered.
        finally:
            self._deliveries.pop(task_id, None)
            self._retry_now.pop(task_id, None)
            self._changed.set()

        delivered_at = utc_now()
        self._add_attempt(record, ReportAttempt(delivered_at, accepted.status_code, None))
        record.state = TaskState.DONE
        record.stuck = False
        self._persist(self.ledger.record_delivered, record, delivered_at)
        attempts = len(record.report_attempts)
        self._publish(
            TaskReported(task_id=task_id, task_type=record.task_type, attempts=attempts, status_code=accepted.status_code)
        )

    def _add_attempt(self, record: TaskRecord, attempt: ReportAttempt) -> None:
        record.report_attempts.append(attempt)
        self._persist(self.ledger.record_attempt, record.task_id, attempt)

    def _check_stuck(self, record: TaskRecord) -> None:
        if record.stuck or record.finished_at is None:
            return
        undelivered = (utc_now() - record.finished_at).total_seconds()
        if undelivered < self.settings.report_stuck_after_seconds:
            return
        record.stuck = True
        self._persist(self.ledger.record_state, record)
        self._publish(ReportStuck(task_id=record.task_id, task_type=record.task_type, undelivered_seconds=undelivered))
