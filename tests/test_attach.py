"""AttachedAgent following a real headless agent through the ledger."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from support import start_headless, wait_for

from console.attach import AttachedAgent, NoAgentRunning
from console.events import Connectivity, TaskUpdated
from console.hub import EmbeddedHub, TaskStatus
from console.records import TaskState


def follow(attached: AttachedAgent, condition, timeout: float = 15.0) -> None:
    """Refresh the attached view until `condition` holds."""

    def refreshed() -> bool:
        attached.refresh()
        return condition()

    wait_for(refreshed, timeout)


@pytest.fixture
def headless(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path):
    process = start_headless(embedded_hub, api_key, tmp_path)
    state_dir = tmp_path / "state"
    wait_for(lambda: (state_dir / "ledger.sqlite3").exists() and len(embedded_hub.store.records.heartbeats()) >= 2)
    yield state_dir
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_attach_sees_identity_and_tasks(embedded_hub: EmbeddedHub, headless: Path) -> None:
    attached = AttachedAgent(headless)
    events = []
    attached.bus.subscribe(events.append)
    follow(attached, lambda: attached.identity is not None and attached.connectivity is Connectivity.ONLINE)

    task_id = embedded_hub.store.enqueue("echo", {}).id
    follow(attached, lambda: task_id in attached.tasks and attached.tasks[task_id].state is TaskState.DONE)

    assert attached.identity.trust_name == "Test Trust"
    assert attached.settings.central_hub_api_url == embedded_hub.api_url
    assert not hasattr(attached.settings, "trust_api_key") or attached.settings.__dict__.get("trust_api_key") is None
    assert any(isinstance(event, TaskUpdated) and event.task_id == task_id for event in events)
    attached.ledger.close()


def test_attach_pause_reaches_agent(embedded_hub: EmbeddedHub, headless: Path) -> None:
    attached = AttachedAgent(headless)

    attached.pause()
    follow(attached, lambda: attached.paused)
    polls = embedded_hub.store.records.count_requests("pending")
    time.sleep(0.5)
    assert embedded_hub.store.records.count_requests("pending") == polls

    attached.resume()
    follow(attached, lambda: not attached.paused)
    wait_for(lambda: embedded_hub.store.records.count_requests("pending") > polls)
    attached.ledger.close()


def test_attach_retry_performed(embedded_hub: EmbeddedHub, headless: Path) -> None:
    embedded_hub.faults.fail_next("result", 429, retry_after=600)
    task_id = embedded_hub.store.enqueue("echo", {}).id
    attached = AttachedAgent(headless)

    follow(attached, lambda: attached.can_retry_report(task_id))
    assert attached.retry_report(task_id)
    wait_for(lambda: embedded_hub.store.task(task_id).status is TaskStatus.COMPLETED)
    follow(attached, lambda: attached.tasks[task_id].state is TaskState.DONE)

    statuses = [record.status for record in embedded_hub.store.records.results() if record.task_id == task_id]
    assert statuses == [429, 200]
    attached.ledger.close()


def test_attach_without_agent_refused(tmp_path: Path) -> None:
    with pytest.raises(NoAgentRunning) as raised:
        AttachedAgent(tmp_path / "state")

    assert "no trust-console agent is running" in str(raised.value)


def test_attach_sees_agent_stop(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    process = start_headless(embedded_hub, api_key, tmp_path)
    state_dir = tmp_path / "state"
    wait_for(lambda: len(embedded_hub.store.records.heartbeats()) >= 2)
    attached = AttachedAgent(state_dir)

    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    follow(attached, lambda: attached.connectivity is Connectivity.STOPPED)

    assert attached.stop_reason == "drained"
    attached.ledger.close()
