"""The task table, the detail pane and the log pane, driven by a real agent and hub."""

from __future__ import annotations

import logging
import re
import threading
import time

from textual.message import Message

from console.events import TaskEvent
from console.hub import EmbeddedHub, TaskStatus
from console.records import TaskState
from console.tui.detail import TaskDetail
from console.tui.messages import AgentEventsPending
from console.tui.log_pane import EventLog
from console.tui.task_table import TaskTable

from tui_support import SIZE, MakeApp, detail_text, eventually, log_text, shown_ids


def cell(table: TaskTable, task_id: str, column: str) -> str:
    return table.get_cell(task_id, column).plain


async def test_tasks_flow_into_table_and_reach_done(hub: EmbeddedHub, make_app: MakeApp) -> None:
    echoes = hub.store.enqueue_many("echo", {"n": 1}, 3)
    failing = hub.store.enqueue("fail", {"message": "disk full"})
    task_ids = [task.id for task in [*echoes, failing]]
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(TaskTable)
        all_done = await eventually(
            pilot, lambda: all(task_id in table.rows and cell(table, task_id, "state").startswith("done") for task_id in task_ids)
        )

        assert all_done
        assert table.row_count == 4
        assert all(app.agent.tasks[task_id].state is TaskState.DONE for task_id in task_ids)
        assert cell(table, failing.id, "state") == "done (failed)"
        assert cell(table, failing.id, "error") == "Task failed on purpose: disk full"
        assert cell(table, echoes[0].id, "state") == "done"
        assert cell(table, echoes[0].id, "error") == ""
        assert cell(table, echoes[0].id, "reports") == "1"
        assert cell(table, echoes[0].id, "received").endswith("s ago")
        assert [task.status for task in hub.store.tasks()].count(TaskStatus.COMPLETED) == 3


async def test_rows_update_in_place_keeping_cursor(hub: EmbeddedHub, make_app: MakeApp) -> None:
    first = hub.store.enqueue_many("echo", {}, 3)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(TaskTable)
        assert await eventually(pilot, lambda: table.row_count == 3)
        await pilot.press("down")
        selected = table.selected_task_id

        later = hub.store.enqueue_many("sleep", {"seconds": 0.3}, 2)
        all_done = await eventually(
            pilot, lambda: all(cell(table, task.id, "state") == "done" for task in [*first, *later] if task.id in table.rows)
            and table.row_count == 5,
        )

        assert all_done
        assert selected == first[1].id
        assert table.cursor_row == 1
        assert table.selected_task_id == selected
        assert shown_ids(app)[:3] == [task.id for task in first]


async def test_detail_shows_failed_task(hub: EmbeddedHub, make_app: MakeApp) -> None:
    failing = hub.store.enqueue("fail", {"message": "imaging API returned 503"})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(TaskTable)
        detail = app.query_one(TaskDetail)
        done = await eventually(
            pilot, lambda: failing.id in table.rows and detail.task_id == failing.id and "200" in detail_text(detail)
        )
        text = detail_text(detail)

        assert done
        assert failing.id in text
        assert "fail" in text
        assert "Task failed on purpose: imaging API returned 503" in text
        assert "JSON object" in text
        assert "Report attempts" in text


async def test_markup_in_task_type_shows_literally(hub: EmbeddedHub, make_app: MakeApp) -> None:
    marked = hub.store.enqueue("[bold]x[/]", {})
    escaped = hub.store.enqueue("bad\x1b[31mred", {})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(TaskTable)
        log = app.query_one(EventLog)
        rows_and_log_written = await eventually(
            pilot,
            lambda: marked.id in table.rows
            and escaped.id in table.rows
            and "Unknown task type: '[bold]x[/]'" in log_text(log),
        )

        assert rows_and_log_written
        assert cell(table, marked.id, "type") == "[bold]x[/]"
        assert cell(table, escaped.id, "type") == "bad\\x1b[31mred"
        assert "\x1b" not in log_text(log)
        assert "bad\\x1b[31mred" in log_text(log)

        table.move_cursor(row=table.get_row_index(marked.id))
        assert await eventually(pilot, lambda: app.query_one(TaskDetail).task_id == marked.id)
        assert re.search(r"^Type +\[bold\]x\[/\] *$", detail_text(app.query_one(TaskDetail)), re.MULTILINE)


async def test_table_coalesces_bursts_of_events(hub: EmbeddedHub, make_app: MakeApp) -> None:
    tasks = hub.store.enqueue_many("echo", {"n": 1}, 40)
    events: list[TaskEvent] = []
    batches: list[AgentEventsPending] = []
    app = make_app()
    app.agent.bus.subscribe(lambda event: events.append(event) if isinstance(event, TaskEvent) else None)

    def record_batch(message: Message) -> None:
        if isinstance(message, AgentEventsPending):
            batches.append(message)

    async with app.run_test(size=SIZE, message_hook=record_batch) as pilot:
        table = app.task_table
        flush_times: list[float] = []
        original_flush = table.flush

        def timed_flush(live, history, now):  # type: ignore[no-untyped-def]
            changed = original_flush(live, history, now)
            if changed:
                flush_times.append(time.monotonic())
            return changed

        table.flush = timed_flush  # type: ignore[method-assign]
        all_done = await eventually(
            pilot, lambda: all(task.id in table.rows and cell(table, task.id, "state") == "done" for task in tasks)
        )

        assert all_done
        assert len(events) >= 4 * len(tasks)
        # Reports go out a few at a time, so events arrive in more, smaller bursts than tasks do.
        assert len(batches) < len(events) / 2
        assert len(flush_times) < len(events) / 10


async def test_log_pane_shows_agent_warnings(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(EventLog)
        logging.getLogger("console.agent").warning("ledger write failed for task %s: %s", "t-1", "[bold]disk[/] full")
        other_thread = threading.Thread(
            target=logging.getLogger("console.ledger").error, args=("ledger is read-only",)
        )
        other_thread.start()
        other_thread.join()
        logging.getLogger("console.hub.store").warning("a hub warning the pane leaves out")
        logging.getLogger("console.agent").info("an info line the pane leaves out")

        shown = await eventually(pilot, lambda: "ledger is read-only" in log_text(log))

        assert shown
        assert "WARNING ledger write failed for task t-1: [bold]disk[/] full" in log_text(log)
        assert "ERROR ledger is read-only" in log_text(log)
        assert "a hub warning" not in log_text(log)
        assert "an info line" not in log_text(log)


async def test_rows_of_dropped_tasks_are_removed(hub: EmbeddedHub, make_app: MakeApp) -> None:
    tasks = hub.store.enqueue_many("echo", {}, 3)
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.task_table
        assert await eventually(pilot, lambda: table.row_count == 3)
        del app.agent.tasks[tasks[0].id]
        # The app's tick does this every FULL_RECHECK_TICKS seconds.
        table.mark_all_dirty()

        removed = await eventually(pilot, lambda: table.row_count == 2)

        assert removed
        assert tasks[0].id not in table.rows
