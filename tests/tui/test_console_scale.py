"""The console with ten thousand tasks in the ledger, and its cost while nothing happens."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from console.hub import EmbeddedHub
from console.ledger import Ledger
from console.records import ReportAttempt, TaskRecord, TaskState
from console.tui.history import PAGE_SIZE
from console.tui.task_table import MAX_FINISHED_ROWS

from tui_support import SIZE, MakeApp, eventually, shown_ids

LEDGER_TASKS = 10_000
START = datetime.now(timezone.utc) - timedelta(seconds=LEDGER_TASKS + 3600)
"""Recent enough that the agent's start-up pruning (LEDGER_RETENTION_DAYS) keeps every task."""


def ledger_task_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def fill_ledger(state_dir: Path, count: int) -> None:
    """Write `count` delivered tasks, one a second from START, through the ledger's own methods."""
    ledger = Ledger(state_dir)
    try:
        # One transaction instead of one synced commit per write: the fill takes a second, not minutes.
        with ledger._transaction():
            for index in range(count):
                received = START + timedelta(seconds=index)
                record = TaskRecord(
                    task_id=ledger_task_id(index),
                    task_type="echo" if index % 10 else "fail",
                    payload_summary="JSON object, 2 bytes, empty",
                    received_at=received,
                )
                ledger.record_received(record, "{}")
                record.started_at = received
                record.finished_at = received + timedelta(milliseconds=5)
                record.success = index % 10 != 0
                record.result = "{}"
                record.state = TaskState.AWAITING_REPORT
                ledger.record_finished(record)
                ledger.record_attempt(record.task_id, ReportAttempt(record.finished_at, 200, None))
                ledger.record_delivered(record, record.finished_at)
    finally:
        ledger.close()


async def test_ten_thousand_ledger_tasks_stay_bounded(hub: EmbeddedHub, make_app: MakeApp, tmp_path: Path) -> None:
    fill_ledger(tmp_path, LEDGER_TASKS)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.task_table
        loaded = len(app.agent.tasks)
        assert await eventually(pilot, lambda: table.row_count == min(loaded, MAX_FINISHED_ROWS))
        newest_shown = shown_ids(app)[-1]
        assert newest_shown == ledger_task_id(LEDGER_TASKS - 1)

        await pilot.press("o")
        paged = await eventually(pilot, lambda: table.row_count == loaded + PAGE_SIZE, timeout=10.0)

        assert paged
        oldest_index = LEDGER_TASKS - loaded - PAGE_SIZE
        assert shown_ids(app)[0] == ledger_task_id(oldest_index)
        assert len(app.history.records) == PAGE_SIZE
        assert "1,000" in app.table_title.plain

        # The cursor stays on its task while a full rebuild runs and new tasks arrive.
        table.move_cursor(row=300)
        selected = table.selected_task_id
        scroll_before = table.scroll_y
        new_tasks = hub.store.enqueue_many("echo", {}, 5)
        assert await eventually(pilot, lambda: all(task.id in table.rows for task in new_tasks))
        # How long a rebuild takes is measured by the console benchmark, not asserted here.
        table.mark_all_dirty()
        app._flush_updates()

        assert table.selected_task_id == selected
        assert table.scroll_y == scroll_before

        await pilot.press(*["down"] * 10)
        assert table.cursor_row == 310
        assert app.detail.task_id == table.selected_task_id

        await pilot.press("7")
        assert await eventually(pilot, lambda: app.query_filter.category is not None and table.row_count >= loaded)
        await pilot.press("slash", *ledger_task_id(LEDGER_TASKS - 2)[-6:])
        assert await eventually(pilot, lambda: shown_ids(app) == [ledger_task_id(LEDGER_TASKS - 2)])


async def test_idle_console_redraws_once_a_second(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app(heartbeat_interval_seconds=25.0, poll_interval_seconds=60.0, poll_burst_interval_seconds=60.0)

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.agent.last_heartbeat_at is not None and app.agent.next_poll_at)
        # Let the first heartbeat's and poll's changes settle, then count.
        await pilot.pause(0.8)
        displays: list[float] = []
        original_hook = app.post_display_hook

        def count_display() -> None:
            displays.append(time.monotonic())
            original_hook()

        app.post_display_hook = count_display  # type: ignore[method-assign]
        await pilot.pause(2.0)

        # A redraw may take two frames in quick succession (content, then layout): count bursts, not frames.
        bursts = [at for index, at in enumerate(displays) if index == 0 or at - displays[index - 1] > 0.2]
        # One redraw a second for the heartbeat's age, plus one for a tick that lands at the edge.
        assert len(bursts) <= 3, displays
        assert len(displays) <= 2 * len(bursts)
