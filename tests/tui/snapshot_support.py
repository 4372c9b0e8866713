"""A console with fixed tasks, times and identity, for snapshot tests that must render the same every run.

A live agent cannot do that: the hub's port, task ids and every timestamp
change per run. So snapshots use a real Agent whose loops the console does
not start, with its state set here. Behaviour tests run the real loops
against the embedded hub instead.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from console.agent import Agent
from console.events import Connectivity, HeartbeatOk, PollCompleted, TaskFinished, TaskReceived, TaskReported
from console.hub_client import Identity
from console.records import ReportAttempt, TaskRecord, TaskState
from console.settings import Settings
from console.tui import TrustConsoleApp

FROZEN_NOW = datetime(2026, 3, 2, 9, 30, 0, tzinfo=timezone.utc)
TRUST_ID = "7d4f2c1a-5b3e-4c8d-9a6f-0e1b2c3d4e5f"
SIZE = (140, 40)


class FrozenAgent(Agent):
    """An Agent whose loops the console does not start, so its state stays as the test sets it."""

    def loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        return {}


def task_id(number: int) -> str:
    return f"5e1c{number:04d}-8a2b-4c3d-9e4f-{number:012d}"


def at(seconds_before: float) -> datetime:
    return FROZEN_NOW - timedelta(seconds=seconds_before)


def frozen_records() -> list[TaskRecord]:
    """Tasks in every state, one with Rich markup and a control character in its type and error."""
    done = TaskRecord(task_id(1), "cohort_query", "JSON object, 64 bytes, keys: cohort_id, query", at(300),
                      TaskState.DONE, at(299), at(297.6), True, '{"count": 42}', None,
                      [ReportAttempt(at(297.5), 200, None)])
    failed = TaskRecord(task_id(2), "imaging_export", "JSON object, 48 bytes, keys: accession, series",
                        at(240), TaskState.DONE, at(239), at(238), False, None,
                        "imaging-api returned 503 Service Unavailable",
                        [ReportAttempt(at(237.9), 503, "result request got 503"), ReportAttempt(at(236), 200, None)])
    stuck = TaskRecord(task_id(3), "echo", "JSON object, 20 bytes, keys: message", at(1800),
                       TaskState.AWAITING_REPORT, at(1799), at(1799), True, '{"message": "hello"}', None,
                       [ReportAttempt(at(1700), 500, "result request got 500"),
                        ReportAttempt(at(900), None, "connection failed (ConnectError)")], stuck=True)
    running = TaskRecord(task_id(4), "sleep", "JSON object, 16 bytes, keys: seconds", at(40), TaskState.RUNNING,
                         at(38))
    queued = TaskRecord(task_id(5), "cohort_query", "JSON object, 64 bytes, keys: cohort_id, query", at(5))
    rejected = TaskRecord(task_id(6), "echo", "JSON object, 2 bytes, empty", at(3600), TaskState.REJECTED,
                          at(3599), at(3599), True, "{}", None, [ReportAttempt(at(3598), 409, "already recorded")],
                          rejection="409: a result for this task is already recorded")
    marked = TaskRecord(task_id(7), "[bold red]x[/]\x1b[31m", "not JSON, 9 bytes", at(120), TaskState.DONE,
                        at(119), at(118), False, None, "Unknown task type: '[bold red]x[/]\x1b[31m'",
                        [ReportAttempt(at(117), 200, None)])
    return [rejected, stuck, done, failed, marked, running, queued]


def frozen_app(
    state_dir: Path, *, connectivity: Connectivity = Connectivity.ONLINE, paused: bool = False,
    api_key: str = "snapshot-key-0123456789",
) -> TrustConsoleApp:
    """Build a console on a FrozenAgent whose clock, tasks and hub state are fixed."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        central_hub_api_url="http://127.0.0.1:8400/api",
        trust_api_key=api_key,
        state_dir=state_dir,
    )
    agent = FrozenAgent(settings)
    agent.identity = Identity(trust_id=TRUST_ID, trust_name="Northwind NHS Foundation Trust")
    agent.hub_version = "1.4.0"
    agent.connectivity = connectivity
    agent.paused = paused
    if connectivity is Connectivity.ONLINE:
        agent.last_heartbeat_at = at(3)
        agent.last_round_trip_seconds = 0.012
        agent.next_poll_at = FROZEN_NOW + timedelta(seconds=4)
    for record in frozen_records():
        agent.tasks[record.task_id] = record
        agent._set_state(record, record.state)  # Indexes the unfinished ones, as the agent does.
    return TrustConsoleApp(agent, clock=lambda: FROZEN_NOW, keymap={}, screenshot_dir=state_dir)


def publish_log_events(app: TrustConsoleApp) -> None:
    """Put a few fixed lines in the log pane, as the agent's events would."""
    bus = app.agent.bus
    bus.publish(HeartbeatOk(round_trip_seconds=0.012, at=at(3)))
    bus.publish(PollCompleted(task_count=1, round_trip_seconds=0.02, at=at(5)))
    bus.publish(TaskReceived(task_id=task_id(5), task_type="cohort_query", at=at(5)))
    bus.publish(TaskFinished(task_id=task_id(1), task_type="cohort_query", success=True, duration_seconds=1.4,
                             at=at(297.6)))
    bus.publish(TaskReported(task_id=task_id(1), task_type="cohort_query", attempts=1, status_code=200,
                             at=at(297.5)))
