"""The console attached to a headless agent running in another process."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets.data_table import RowDoesNotExist
from support import start_headless, wait_for
from tui_support import SIZE, eventually

from console.attach import AttachedAgent
from console.hub import EmbeddedHub, TaskStatus
from console.records import TaskState
from console.tui import TrustConsoleApp


def has_row(app: TrustConsoleApp, task_id: str) -> bool:
    try:
        app.task_table.get_row_index(task_id)
    except RowDoesNotExist:
        return False
    return True


@pytest.fixture
def headless_state_dir(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> Iterator[Path]:
    process = start_headless(embedded_hub, api_key, tmp_path)
    state_dir = tmp_path / "state"
    wait_for(lambda: len(embedded_hub.store.records.heartbeats()) >= 2)
    yield state_dir
    # A second signal stops at once, without waiting for a report the hub asked to delay.
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)


async def test_attach_pause_seen_by_agent(embedded_hub: EmbeddedHub, headless_state_dir: Path) -> None:
    store = embedded_hub.store
    app = TrustConsoleApp(AttachedAgent(headless_state_dir), title="attached")

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.agent.identity is not None)
        await pilot.press("p")
        assert await eventually(pilot, lambda: app.agent.paused, timeout=10)
        polls = store.records.count_requests("pending")
        task_id = store.enqueue("echo", {}).id
        await pilot.pause(0.6)
        assert store.records.count_requests("pending") == polls
        assert store.task(task_id).status is TaskStatus.PENDING

        await pilot.press("p")
        assert await eventually(pilot, lambda: store.task(task_id).status is TaskStatus.COMPLETED, timeout=10)
        assert await eventually(pilot, lambda: task_id in app.agent.tasks, timeout=10)
        await pilot.press("q")

    assert not app.is_running


async def test_attach_retry_performed(embedded_hub: EmbeddedHub, headless_state_dir: Path) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 429, retry_after=600)
    task_id = store.enqueue("echo", {}).id
    app = TrustConsoleApp(AttachedAgent(headless_state_dir), title="attached")

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.agent.can_retry_report(task_id), timeout=10)
        assert await eventually(pilot, lambda: has_row(app, task_id))
        app.task_table.move_cursor(row=app.task_table.get_row_index(task_id))
        await pilot.pause(0.3)
        await pilot.press("r")
        assert await eventually(pilot, lambda: store.task(task_id).status is TaskStatus.COMPLETED, timeout=10)
        assert await eventually(pilot, lambda: app.agent.tasks[task_id].state is TaskState.DONE, timeout=10)
        await pilot.press("q")

    statuses = [record.status for record in store.records.results() if record.task_id == task_id]
    assert statuses == [429, 200]
