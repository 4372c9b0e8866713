"""The durable ledger: file safety, restarts, stuck results and operator requests."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support import running, start_headless, wait_for, wait_until

from console.agent import Agent
from console.events import ReportStuck
from console.hub import EmbeddedHub, TaskStatus
from console.ledger import AgentLock, Ledger, StateDirLocked
from console.records import TaskRecord, TaskState


def result_statuses(hub: EmbeddedHub, task_id: str) -> list[int]:
    return [record.status for record in hub.store.records.results() if record.task_id == task_id]


def stored_attempts(agent: Agent, task_id: str) -> int:
    stored = agent.ledger.load(task_id)
    return 0 if stored is None else len(stored[0].report_attempts)


def seed_interrupted_task(state_dir: Path, task_id: str, payload: str, runs: int) -> None:
    """Leave a `sleep` task in the ledger as an agent killed while its handler ran leaves it, `runs` times."""
    ledger = Ledger(state_dir)
    record = TaskRecord(task_id, "sleep", "JSON object", datetime.now(timezone.utc), state=TaskState.RUNNING)
    ledger.record_received(record, payload)
    for _ in range(runs):
        ledger.record_run(record)
        ledger.record_started(record)
    ledger.close()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], capture_output=True, text=True, cwd=cwd, timeout=30
    )


def test_files_private_and_wal(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    ledger = Ledger(state_dir)

    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    with sqlite3.connect(ledger.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ledger.close()


def test_second_agent_on_state_dir_refused(make_settings) -> None:
    settings = make_settings()
    first = Agent(settings)

    with pytest.raises(StateDirLocked) as raised:
        Agent(settings)

    assert str(settings.state_dir) in str(raised.value)
    assert "another trust-console agent" in str(raised.value)
    asyncio.run(first.close())
    second = Agent(settings)
    asyncio.run(second.close())


def test_lock_reported_held_only_while_held(tmp_path: Path) -> None:
    lock = AgentLock(tmp_path)
    assert not AgentLock.is_held(tmp_path)

    lock.acquire()
    assert AgentLock.is_held(tmp_path)
    lock.release()

    assert not AgentLock.is_held(tmp_path)


def test_prune_keeps_undelivered(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    old = datetime.now(timezone.utc) - timedelta(days=40)
    for task_id, state in (("a", TaskState.DONE), ("b", TaskState.AWAITING_REPORT), ("c", TaskState.REJECTED)):
        ledger.record_received(TaskRecord(task_id, "echo", "summary", old, state=state), "{}")

    assert ledger.prune(30) == 2
    assert [record.task_id for record in ledger.records()] == ["b"]
    ledger.close()


async def test_result_in_ledger_before_delivery_and_payload_dropped_after(
    embedded_hub: EmbeddedHub, make_settings
) -> None:
    embedded_hub.faults.fail_next("result", 503, count=1000)
    task_id = embedded_hub.store.enqueue("echo", {"k": "v"}).id
    settings = make_settings()
    agent = Agent(settings)

    async with running(agent):
        await wait_until(lambda: stored_attempts(agent, task_id) >= 2)
        record, payload, runs = agent.ledger.load(task_id)
        assert record.state is TaskState.AWAITING_REPORT
        assert record.result == '{"k": "v"}'
        assert payload == '{"k": "v"}'
        assert runs == 1
        assert len(record.report_attempts) >= 2
        assert record.report_attempts[0].status_code == 503

        embedded_hub.faults.clear()
        await wait_until(lambda: agent.tasks[task_id].state is TaskState.DONE)

    ledger = Ledger(settings.state_dir)
    record, payload, _ = ledger.load(task_id)
    assert record.state is TaskState.DONE
    assert payload is None
    ledger.close()


async def test_stuck_result_marked_and_retried(embedded_hub: EmbeddedHub, make_settings) -> None:
    embedded_hub.faults.fail_next("result", 503, count=1000)
    task_id = embedded_hub.store.enqueue("echo", {}).id
    agent = Agent(make_settings(report_stuck_after_seconds=0.3))
    events = []
    agent.bus.subscribe(events.append)

    async with running(agent):
        await wait_until(lambda: task_id in agent.tasks and agent.tasks[task_id].stuck)
        assert agent.stuck_task_ids() == [task_id]
        # A stuck result is still retried.
        failed_before = len(result_statuses(embedded_hub, task_id))
        await wait_until(lambda: len(result_statuses(embedded_hub, task_id)) > failed_before)
        attempts = len(result_statuses(embedded_hub, task_id))
        embedded_hub.faults.clear()
        await wait_until(lambda: agent.tasks[task_id].state is TaskState.DONE)

    assert attempts >= 2
    assert [event.task_id for event in events if isinstance(event, ReportStuck)] == [task_id]
    assert not agent.tasks[task_id].stuck


async def test_restart_reruns_interrupted_handler_once(embedded_hub: EmbeddedHub, make_settings) -> None:
    task_id = embedded_hub.store.enqueue("sleep", {"seconds": 0.3}).id
    settings = make_settings()
    seed_interrupted_task(settings.state_dir, task_id, '{"seconds": 0.3}', runs=1)
    embedded_hub.store.hand_out(embedded_hub.trust.trust_id)
    agent = Agent(settings)

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.task(task_id).status is TaskStatus.COMPLETED)

    assert result_statuses(embedded_hub, task_id) == [200]
    assert agent.ledger is not None


async def test_restart_fails_task_interrupted_twice(embedded_hub: EmbeddedHub, make_settings) -> None:
    task_id = embedded_hub.store.enqueue("sleep", {"seconds": 0.3}).id
    settings = make_settings()
    seed_interrupted_task(settings.state_dir, task_id, '{"seconds": 0.3}', runs=2)
    embedded_hub.store.hand_out(embedded_hub.trust.trust_id)
    agent = Agent(settings)

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.task(task_id).status is TaskStatus.FAILED)

    assert "interrupted by agent stops 2 time(s)" in embedded_hub.store.task(task_id).result


def test_sigkill_before_delivery_then_restart_delivers_once(
    embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path
) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 503, count=10_000)
    task_id = store.enqueue("sleep", {"seconds": 0.2}).id
    first = start_headless(embedded_hub, api_key, tmp_path)
    try:
        wait_for(lambda: len(result_statuses(embedded_hub, task_id)) >= 2)
    finally:
        first.send_signal(signal.SIGKILL)
        _, first_log = first.communicate(timeout=10)

    assert f"task {task_id} (sleep) report failed (attempt 1)" in first_log
    embedded_hub.faults.clear()
    second = start_headless(embedded_hub, api_key, tmp_path)
    try:
        wait_for(lambda: store.task(task_id).status is TaskStatus.COMPLETED)
        time.sleep(0.3)
    finally:
        second.send_signal(signal.SIGTERM)
        _, second_log = second.communicate(timeout=20)

    assert result_statuses(embedded_hub, task_id).count(200) == 1
    assert f"task {task_id} (sleep) started" not in second_log
    assert f"task {task_id} (sleep) reported" in second_log
    assert second.returncode == 0


def test_cli_retry_while_agent_runs(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 429, retry_after=600)
    task_id = store.enqueue("echo", {}).id
    agent = start_headless(embedded_hub, api_key, tmp_path)
    state_dir = str(tmp_path / "state")
    try:
        wait_for(lambda: result_statuses(embedded_hub, task_id) == [429])
        listed = run_cli("tasks", "--state", "awaiting-report", "--state-dir", state_dir, cwd=tmp_path)
        retried = run_cli("retry", task_id, "--state-dir", state_dir, cwd=tmp_path)
        wait_for(lambda: store.task(task_id).status is TaskStatus.COMPLETED)
        again = run_cli("retry", task_id, "--state-dir", state_dir, cwd=tmp_path)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=20)

    assert task_id in listed.stdout
    assert retried.returncode == 0, retried.stderr
    assert "retrying the report now" in retried.stdout
    assert result_statuses(embedded_hub, task_id) == [429, 200]
    assert again.returncode == 1
    assert "nothing to retry" in again.stdout


def test_cli_retry_without_agent_says_so(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state")
    ledger.record_received(TaskRecord("t1", "echo", "summary", datetime.now(timezone.utc)), "{}")
    ledger.close()

    completed = run_cli("retry", "t1", "--state-dir", str(tmp_path / "state"), cwd=tmp_path)

    assert completed.returncode == 1
    assert "no agent is running" in completed.stdout


def test_cli_tasks_without_ledger_names_state_dir(tmp_path: Path) -> None:
    completed = run_cli("tasks", "--state-dir", str(tmp_path / "missing"), cwd=tmp_path)

    assert completed.returncode == 1
    assert "missing" in completed.stderr
    assert not (tmp_path / "missing").exists()
    assert os.listdir(tmp_path) == []


async def test_resumed_task_waits_for_identity(embedded_hub: EmbeddedHub, make_settings) -> None:
    task_id = embedded_hub.store.enqueue("sleep", {"seconds": 0.1}).id
    settings = make_settings(expected_trust_id="00000000-0000-4000-8000-000000000000")
    seed_interrupted_task(settings.state_dir, task_id, '{"seconds": 0.1}', runs=1)
    agent = Agent(settings)

    exit_code = await asyncio.wait_for(agent.run(), 15)

    ledger = Ledger(settings.state_dir)
    stored, _, runs = ledger.load(task_id)
    ledger.close()
    assert exit_code == 2
    assert runs == 1
    assert stored.state is TaskState.RUNNING
    assert embedded_hub.store.records.results() == []


async def test_409_after_restart_says_first_may_count(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    task_id = store.enqueue("echo", {}).id
    store.hand_out(embedded_hub.trust.trust_id)
    store.record_result(task_id, embedded_hub.trust.trust_id, True, "{}")
    settings = make_settings()
    ledger = Ledger(settings.state_dir)
    now = datetime.now(timezone.utc)
    record = TaskRecord(task_id, "echo", "JSON object", now, state=TaskState.AWAITING_REPORT)
    record.success, record.result, record.started_at, record.finished_at = True, "{}", now, now
    ledger.record_received(record, "{}")
    ledger.record_finished(record)
    ledger.close()
    agent = Agent(settings)

    async with running(agent):
        await wait_until(lambda: agent.tasks[task_id].state is TaskState.REJECTED)

    assert "resent after a restart" in agent.tasks[task_id].rejection
    assert result_statuses(embedded_hub, task_id) == [409]
