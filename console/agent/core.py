"""The Agent class: its state, life cycle and the helpers its loops share.

The loops share one hub client. The heartbeat loop never waits for task work.
The poll loop claims tasks only while a handler slot is free, and handlers
run concurrently up to MAX_CONCURRENT_TASKS. The report loop delivers each
result with retries of its own, so one slow delivery holds up no other. The
console and the headless runner host the same Agent and watch its events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ..events import (
    AgentEvent,
    AgentStopped,
    Connectivity,
    ConnectivityChanged,
    DrainStarted,
    EventBus,
    Paused,
    Resumed,
    utc_now,
)
from ..handlers import (
    HandlerOutcome,
    HandlerRegistry,
    PayloadDecoder,
    default_registry,
)
from ..hub_client import (
    HubClient,
    HubError,
    Identity,
    ResultRejected,
)
from ..ledger import AgentLock, Ledger, LedgerError, prepare_state_dir
from ..records import FINAL_STATES, TaskRecord, TaskState
from ..retrying import sleep_unless_woken, wait_for_hub
from ..settings import Settings, SettingsError
from .control import RECENT_RECORDS, ControlMixin
from .exits import EXIT_OK
from .ledger_writer import LedgerWriter
from .heartbeat import HeartbeatMixin
from .polling import PollingMixin
from .reporting import ReportingMixin

log = logging.getLogger("console.agent")

MAX_HANDLER_RUNS = 2
"""Runs allowed per task across agent restarts, so a task that crashes the agent cannot loop.

A run counts from the moment the task is queued for a handler slot, so a task
that waited for a slot when the agent stopped has used a run too.
"""

CONCURRENT_REPORTS = 2
"""Result reports sent at the same time."""


class HealthSource(Protocol):
    """Source of the health snapshot sent with each heartbeat."""

    def snapshot(self) -> dict[str, Any] | None:
        """Return the latest snapshot if it is fresh, else None so the heartbeat goes without a body."""

    async def run(self) -> None:
        """Collect snapshots until cancelled."""


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, HubError) and not isinstance(error, ResultRejected)


class Agent(HeartbeatMixin, PollingMixin, ReportingMixin, ControlMixin):
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
        on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.settings = settings
        self._on_close = list(on_close)
        self.registry = registry or default_registry()
        self.bus = bus or EventBus()
        self.payload_decoder = payload_decoder
        self.health = health
        self.local_key_fingerprint = local_key_fingerprint
        self.hub_key_fingerprint: str | None = None
        self._fingerprint_warned = False
        self._rejected_snapshot: dict[str, Any] | None = None

        unknown = sorted(set(settings.enabled_task_types or ()) - set(self.registry.task_types))
        if unknown:
            raise SettingsError(
                f"ENABLED_TASK_TYPES is invalid: no handler for {', '.join(map(repr, unknown))}; registered task types"
                f" are {', '.join(self.registry.task_types)}"
            )

        # One agent per STATE_DIR: take the lock before touching the ledger.
        self._lock = AgentLock(prepare_state_dir(settings.state_dir))
        self._lock.acquire()
        try:
            self.ledger = Ledger(settings.state_dir)
        except LedgerError:
            self._lock.release()
            raise
        self._writer = LedgerWriter(self.ledger, self._ledger_write_failed)
        self.client = client or HubClient(settings)

        self.tasks: dict[str, TaskRecord] = {}
        self._open: dict[str, TaskRecord] = {}
        """The tasks of self.tasks not yet delivered or rejected; kept by _set_state so counts stay cheap."""
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
        # Deliveries use at most 2 of the hub client's 16 connections, so heartbeats and polls always
        # find one free however many results wait. More in parallel only adds connection-pool overhead.
        self._report_slots = asyncio.Semaphore(CONCURRENT_REPORTS)
        self._reports_held_until = 0.0
        """Event loop time before which no result is sent: the hub's Retry-After after a 429."""
        self._operator_retries: set[str] = set()
        """Tasks whose next report an operator asked for now, so it skips the Retry-After hold."""
        self._held_reports: set[str] = set()
        """Tasks whose report waits for the Retry-After hold before its attempt."""
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
        self._resumed_ids: set[str] = set()
        """Results from an earlier run, sent again after a restart."""
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


    @property
    def in_flight(self) -> int:
        """Tasks received but not yet reported or rejected."""
        return len(self._open)

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
            for record in self._open.values()
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
        # Resources of handlers (such as their HTTP clients) close only once no handler runs.
        for close in self._on_close:
            try:
                await close()
            except Exception:
                log.exception("closing a handler resource failed")
        self._writer.close()
        self.ledger.close()
        self._lock.release()

    def stop_claiming(self, timeout_seconds: float | None = None) -> None:
        """Claim no new task from now on; a signal handler calls this before the drain task starts."""
        if not self._claiming:
            return
        self._claiming = False
        self._wake_poll.set()
        timeout = self.settings.drain_timeout_seconds if timeout_seconds is None else timeout_seconds
        self._publish(DrainStarted(in_flight=self.in_flight, timeout_seconds=timeout))

    async def drain(self, timeout_seconds: float | None = None) -> bool:
        """Stop claiming, let in-flight tasks finish and report, then stop; True if all were delivered.

        A poll already in flight completes and its tasks run too. Heartbeats go
        on until the drain ends.
        """
        timeout = self.settings.drain_timeout_seconds if timeout_seconds is None else timeout_seconds
        self.stop_claiming(timeout)

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

    def _persist(
        self,
        write: Callable[..., None],
        *arguments: object,
        durable: bool = False,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue a ledger write; the ledger writer commits it together with the writes queued around it.

        With `durable` the commit is synced to disk; `then` runs once the write is committed, or
        once its failure is logged.

        NOTE: while the ledger cannot be written (a full disk), results are still reported from
        memory, but a crash in that time loses them, and the hub runs those tasks again later.
        """
        first = arguments[0] if arguments else None
        task_id = None
        if isinstance(first, TaskRecord):
            task_id = first.task_id
        elif isinstance(first, str):
            task_id = first
        self._writer.submit(write, *arguments, task_id=task_id, durable=durable, then=then)

    def _persist_and_track(self, write: Callable[..., None], *arguments: object) -> asyncio.Future[None]:
        """Queue a ledger write; return a future done once it is committed or its failure logged."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._persist(write, *arguments, then=lambda: done.done() or done.set_result(None))
        return done

    def _ledger_write_failed(self, task_id: str | None, error: LedgerError) -> None:
        """Log a failed ledger write and go on, since the record is still in memory."""
        log.error("ledger write failed for task %s: %s", task_id or "-", error)

    def _load_ledger(self) -> list[tuple[TaskRecord, str | None, int]]:
        """Load recent and unfinished tasks from the ledger; return the unfinished ones to resume."""
        active = self.ledger.active()
        active_ids = {record.task_id for record, _, _ in active}
        for record in reversed(self.ledger.records(limit=RECENT_RECORDS)):
            if record.task_id not in active_ids:
                self.tasks[record.task_id] = record
        for record, _, _ in active:
            self.tasks[record.task_id] = record
            self._open[record.task_id] = record
        if active:
            log.info("ledger has %d unfinished task(s) from an earlier run; resuming them", len(active))
        return active

    def _resume(self) -> None:
        """Deliver stored results, and run again tasks whose handler an earlier stop interrupted."""
        plan, self._resume_plan = self._resume_plan, []
        for record, payload, runs in plan:
            if record.state is TaskState.AWAITING_REPORT:
                self._resumed_ids.add(record.task_id)
                self._outbox.put_nowait(record.task_id)
            elif payload is None or runs >= MAX_HANDLER_RUNS:
                outcome = HandlerOutcome.failed(
                    f"Task run interrupted by agent stops {runs} time(s); not run again"
                )
                self._finish(record, outcome)
            else:
                if runs:
                    log.warning("task %s (%s) was interrupted by a stop; running it again", record.task_id, record.task_type)
                self._set_state(record, TaskState.QUEUED)
                self._spawn_handler(record, payload)

    def _set_state(self, record: TaskRecord, state: TaskState) -> None:
        """Move a task to `state`; every state change goes through here to keep the open tasks' index."""
        record.state = state
        if state in FINAL_STATES:
            self._open.pop(record.task_id, None)
        else:
            self._open[record.task_id] = record

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
