"""The console's task and agent keys: pause, retry, retry stuck, re-run, heartbeat, poll, screenshot, quit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from console.events import Connectivity, TaskStarted
from console.hub import EmbeddedHub, TaskStatus
from console.records import TaskState
from console.tui.confirm_action import ConfirmActionScreen
from console.tui.confirm_quit import ConfirmQuitScreen
from console.tui.task_table import TaskTable

from tui_support import SIZE, MakeApp, detail_text, eventually, footer_actions, static_text


async def test_pause_key_stops_claiming_and_resumes(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        badge = app.query_one("#paused-badge", Static)
        assert await eventually(pilot, lambda: agent.connectivity is Connectivity.ONLINE)
        assert not badge.display

        await pilot.press("p")
        assert agent.paused
        assert await eventually(pilot, lambda: badge.display)
        assert static_text(badge).strip() == "PAUSED"
        assert "polling paused" in static_text(app.query_one("#timing", Static), width=200)
        assert "poll_now" not in footer_actions(app)

        task = hub.store.enqueue("echo", {})
        heartbeat_before = agent.last_heartbeat_at
        assert await eventually(pilot, lambda: agent.last_heartbeat_at != heartbeat_before)
        # Several poll intervals pass; a paused agent claims nothing.
        await pilot.pause(1.0)
        assert hub.store.task(task.id).status is TaskStatus.PENDING
        assert badge.display

        await pilot.press("p")
        assert not agent.paused
        assert await eventually(pilot, lambda: task.id in agent.tasks)
        assert await eventually(pilot, lambda: agent.tasks[task.id].state is TaskState.DONE)
        assert await eventually(pilot, lambda: not badge.display)


async def test_retry_key_hidden_without_failed_report(hub: EmbeddedHub, make_app: MakeApp) -> None:
    task = hub.store.enqueue("echo", {})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(TaskTable)
        assert app.check_action("retry_report", ()) is False
        assert await eventually(pilot, lambda: table.selected_task_id == task.id)
        assert await eventually(pilot, lambda: app.agent.tasks[task.id].state is TaskState.DONE)

        await pilot.press("r")
        await pilot.pause()

        assert app.check_action("retry_report", ()) is False
        assert "retry_report" not in footer_actions(app)
        assert len(app.agent.tasks[task.id].report_attempts) == 1


async def test_retry_key_resends_failed_report(hub: EmbeddedHub, make_app: MakeApp) -> None:
    # A 429 with Retry-After 60 delays the next attempt by a minute, so only the key can send it sooner.
    hub.faults.fail_next("result", 429, retry_after=60)
    task = hub.store.enqueue("echo", {"n": 7})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        table = app.query_one(TaskTable)
        failing = await eventually(pilot, lambda: task.id in agent.tasks and agent.can_retry_report(task.id))
        assert failing
        assert await eventually(pilot, lambda: table.selected_task_id == task.id)
        assert await eventually(pilot, lambda: "retry_report" in footer_actions(app))
        assert agent.tasks[task.id].state is TaskState.AWAITING_REPORT
        assert table.get_cell(task.id, "reports").plain == "1 (429)"
        assert await eventually(pilot, lambda: "press r to send it now" in detail_text(app.detail))

        await pilot.press("r")
        delivered = await eventually(pilot, lambda: agent.tasks[task.id].state is TaskState.DONE, timeout=5.0)

        assert delivered
        assert [attempt.status_code for attempt in agent.tasks[task.id].report_attempts] == [429, 200]
        assert hub.store.task(task.id).status is TaskStatus.COMPLETED
        assert await eventually(pilot, lambda: "retry_report" not in footer_actions(app))


async def test_retry_all_stuck_key_asks_then_resends(hub: EmbeddedHub, make_app: MakeApp) -> None:
    # The hub rate-limits every report for a minute. A task whose report got the 429 is stuck after
    # its failed attempt; one that waits for the Retry-After without an attempt is stuck too.
    hub.faults.fail_next("result", 429, count=100, retry_after=60)
    tasks = hub.store.enqueue_many("echo", {}, 2)
    app = make_app(report_stuck_after_seconds=0.01)

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        stuck = await eventually(pilot, lambda: len(agent.stuck_task_ids()) == 2)
        assert stuck
        assert await eventually(pilot, lambda: "retry_all_stuck" in footer_actions(app))
        assert await eventually(pilot, lambda: static_text(app.query_one("#counter-stuck", Static)).strip().endswith("2"))

        await pilot.press("R")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
        await pilot.press("n")
        assert await eventually(pilot, lambda: not isinstance(app.screen, ConfirmActionScreen))
        await pilot.pause(0.3)
        assert all(agent.tasks[task.id].state is TaskState.AWAITING_REPORT for task in tasks)

        hub.faults.clear()
        await pilot.press("R")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
        await pilot.press("y")
        delivered = await eventually(pilot, lambda: all(agent.tasks[task.id].state is TaskState.DONE for task in tasks))

        assert delivered
        assert agent.stuck_task_ids() == []
        assert await eventually(pilot, lambda: "retry_all_stuck" not in footer_actions(app))


async def test_rerun_key_asks_then_reruns_failed_task(hub: EmbeddedHub, make_app: MakeApp) -> None:
    # The failure's report is held back for a minute, so it is still undelivered when the key is pressed.
    hub.faults.fail_next("result", 429, retry_after=60)
    task = hub.store.enqueue("fail", {"message": "first run"})
    started: list[str] = []
    app = make_app()
    app.agent.bus.subscribe(lambda event: started.append(event.task_id) if isinstance(event, TaskStarted) else None)

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        assert await eventually(pilot, lambda: task.id in agent.tasks)
        assert await eventually(pilot, lambda: agent.can_rerun(task.id))
        assert await eventually(pilot, lambda: "rerun" in footer_actions(app))

        await pilot.press("x")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
        await pilot.press("escape")
        assert await eventually(pilot, lambda: not isinstance(app.screen, ConfirmActionScreen))
        assert started == [task.id]

        await pilot.press("x")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
        await pilot.press("y")
        delivered = await eventually(pilot, lambda: agent.tasks[task.id].state is TaskState.DONE)

        assert delivered
        assert started == [task.id, task.id]
        assert hub.store.task(task.id).status is TaskStatus.FAILED
        assert await eventually(pilot, lambda: "rerun" not in footer_actions(app))


async def test_rerun_key_hidden_for_successful_task(hub: EmbeddedHub, make_app: MakeApp) -> None:
    task = hub.store.enqueue("echo", {})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.task_table.selected_task_id == task.id)
        assert await eventually(pilot, lambda: app.agent.tasks[task.id].state is TaskState.DONE)

        await pilot.press("x")
        await pilot.pause()

        assert not isinstance(app.screen, ConfirmActionScreen)
        assert app.check_action("rerun", ()) is False


async def test_heartbeat_key_sends_heartbeat_now(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app(heartbeat_interval_seconds=25.0)

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        assert await eventually(pilot, lambda: agent.last_heartbeat_at is not None)
        first = agent.last_heartbeat_at

        await pilot.press("h")
        sent = await eventually(pilot, lambda: agent.last_heartbeat_at != first, timeout=3.0)

        assert sent


async def test_poll_key_polls_now(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app(poll_interval_seconds=60.0, poll_burst_interval_seconds=60.0)

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        assert await eventually(pilot, lambda: agent.next_poll_at is not None)
        task = hub.store.enqueue("echo", {})
        await pilot.pause(0.5)
        assert task.id not in agent.tasks

        await pilot.press("f")
        received = await eventually(pilot, lambda: task.id in agent.tasks, timeout=3.0)

        assert received


async def test_screenshot_key_saves_svg(hub: EmbeddedHub, make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+s")
        saved = await eventually(pilot, lambda: any(tmp_path.glob("*.svg")))

        assert saved
        assert "trust-console" in next(tmp_path.glob("*.svg")).read_text()


async def test_quit_key_without_work_quits(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.agent.connectivity is Connectivity.ONLINE)
        await pilot.press("q")
        quit_now = await eventually(pilot, lambda: app.return_code is not None)

        assert quit_now
        assert app.return_code == 0
        assert app.agent.stopped
        assert app.agent.stop_reason == "operator quit"


async def test_quit_key_with_work_in_flight_asks_first(hub: EmbeddedHub, make_app: MakeApp) -> None:
    task = hub.store.enqueue("sleep", {"seconds": 30})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        assert await eventually(pilot, lambda: task.id in agent.tasks)
        assert await eventually(pilot, lambda: agent.tasks[task.id].state is TaskState.RUNNING)

        await pilot.press("q")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("n")
        assert await eventually(pilot, lambda: not isinstance(app.screen, ConfirmQuitScreen))
        await asyncio.sleep(0.1)
        assert not agent.stopped
        assert app.return_code is None
        assert agent.tasks[task.id].state is TaskState.RUNNING

        await pilot.press("q")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("y")
        quit_now = await eventually(pilot, lambda: app.return_code is not None)

        assert quit_now
        assert app.return_code == 0
        assert agent.stopped


async def test_quit_key_can_finish_tasks_first(hub: EmbeddedHub, make_app: MakeApp) -> None:
    task = hub.store.enqueue("sleep", {"seconds": 1.0})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        assert await eventually(pilot, lambda: task.id in agent.tasks)
        assert await eventually(pilot, lambda: agent.tasks[task.id].state is TaskState.RUNNING)

        await pilot.press("q")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("f")
        assert await eventually(pilot, lambda: app.draining)
        assert app.check_action("toggle_pause", ()) is False
        assert app.check_action("poll_now", ()) is False
        quit_after_drain = await eventually(pilot, lambda: app.return_code is not None)

        assert quit_after_drain
        assert app.return_code == 0
        assert agent.tasks[task.id].state is TaskState.DONE
        assert hub.store.task(task.id).status is TaskStatus.COMPLETED
        assert agent.stop_reason == "drained"
