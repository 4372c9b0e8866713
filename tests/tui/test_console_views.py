"""The console's views and list keys: help, filter, counters, details, connectivity, sort, log, palette, keymap."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import Static
from textual.widgets.data_table import ColumnKey

from console.events import Connectivity
from console.hub import EmbeddedHub
from console.records import TaskState
from console.tui.connectivity_screen import ConnectivityScreen
from console.tui.detail_screen import TaskDetailScreen
from console.tui.help_screen import HelpScreen
from console.tui.task_view import TaskCategory

from tui_support import SIZE, MakeApp, detail_text, eventually, footer_actions, plain_text, shown_ids, static_text


async def test_help_key_lists_every_binding(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert await eventually(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = plain_text(app.screen.query_one("#help-keys", Static).content, width=200)

        binding_ids = {binding.id for binding in app._all_bindings()}
        missing = [binding_id for binding_id in binding_ids if binding_id not in text]
        assert missing == []
        for key in ("?", "/", "esc", "p", "r", "R", "x", "h", "f", "s", "l", "c", "o", "q", "^s", "^p"):
            assert f"\n {key} " in "\n" + text or f" {key} " in text

        await pilot.press("escape")
        assert await eventually(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_filter_key_matches_type_and_error(hub: EmbeddedHub, make_app: MakeApp) -> None:
    echoes = hub.store.enqueue_many("echo", {}, 3)
    failing = hub.store.enqueue("fail", {"message": "imaging API returned 503"})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.task_table.row_count == 4)

        await pilot.press("slash")
        assert app.filter_input.has_focus
        await pilot.press(*"api returned")
        assert await eventually(pilot, lambda: "filter 'api returned'" in app.table_title.plain)
        assert shown_ids(app) == [failing.id]

        await pilot.press("enter")
        assert app.task_table.has_focus
        assert "clear_filter" in footer_actions(app)

        await pilot.press("escape")
        assert await eventually(pilot, lambda: app.task_table.row_count == 4)
        assert not app.filter_input.display
        assert app.filter_input.value == ""

        await pilot.press("slash", *"ECHO")
        assert await eventually(pilot, lambda: sorted(shown_ids(app)) == sorted(task.id for task in echoes))
        await pilot.press("escape")
        assert await eventually(pilot, lambda: app.task_table.row_count == 4)
        assert "clear_filter" not in footer_actions(app)


async def test_filter_text_with_markup_is_literal(hub: EmbeddedHub, make_app: MakeApp) -> None:
    marked = hub.store.enqueue("[red]x[/red]", {})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: marked.id in app.task_table.rows)

        await pilot.press("slash", *"[red]")
        shown = await eventually(pilot, lambda: shown_ids(app) == [marked.id])

        assert shown
        assert await eventually(pilot, lambda: "filter '[red]'" in app.table_title.plain)


async def test_counter_keys_filter_by_state(hub: EmbeddedHub, make_app: MakeApp) -> None:
    echoes = hub.store.enqueue_many("echo", {}, 2)
    failing = hub.store.enqueue("fail", {"message": "no data"})
    sleeping = hub.store.enqueue("sleep", {"seconds": 30})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        done_counter = app.query_one("#counter-done", Static)
        assert await eventually(pilot, lambda: static_text(done_counter).strip().endswith("3"))
        assert await eventually(pilot, lambda: app.agent.tasks[sleeping.id].state is TaskState.RUNNING)
        assert static_text(app.query_one("#counter-failed", Static)).strip().endswith("1")
        assert static_text(app.query_one("#counter-all", Static)).strip().endswith("4")

        await pilot.press("2")
        assert await eventually(pilot, lambda: shown_ids(app) == [sleeping.id])
        assert app.query_one("#counter-running").has_class("-chosen")

        await pilot.press("6")
        assert await eventually(pilot, lambda: shown_ids(app) == [failing.id])

        await pilot.press("7")
        assert await eventually(pilot, lambda: sorted(shown_ids(app)) == sorted([*(t.id for t in echoes), failing.id]))

        await pilot.press("7")
        assert await eventually(pilot, lambda: app.task_table.row_count == 4)
        assert app.query_filter.category is None

        await pilot.click("#counter-running")
        assert await eventually(pilot, lambda: shown_ids(app) == [sleeping.id])
        await pilot.press("0")
        assert await eventually(pilot, lambda: app.task_table.row_count == 4)

        await pilot.press("q", "y")
        assert await eventually(pilot, lambda: app.return_code is not None)


async def test_enter_opens_details_and_escape_returns(hub: EmbeddedHub, make_app: MakeApp) -> None:
    hub.faults.fail_next("result", 503)
    failing = hub.store.enqueue("fail", {"message": "disk [bold]full[/]"})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: failing.id in app.agent.tasks
                                and app.agent.tasks[failing.id].state is TaskState.DONE)
        app.task_table.select_task(failing.id)

        await pilot.press("enter")
        assert await eventually(pilot, lambda: isinstance(app.screen, TaskDetailScreen))
        assert await eventually(pilot, lambda: failing.id in detail_text(app.screen.detail))
        body = detail_text(app.screen.detail)

        assert failing.id in body
        assert "JSON object" in body
        assert "Task failed on purpose: disk [bold]full[/]" in body
        assert "Report attempts" in body
        assert "503" in body
        assert "200" in body
        assert app.screen.query_one("#connectivity-badge", Static).display
        assert "details" not in footer_actions(app)

        await pilot.press("escape")
        assert await eventually(pilot, lambda: not isinstance(app.screen, TaskDetailScreen))
        assert app.task_table.selected_task_id == failing.id


async def test_connectivity_view_counts_replies(hub: EmbeddedHub, make_app: MakeApp) -> None:
    hub.faults.fail_next("heartbeat", 503)
    hub.faults.fail_next("pending", 429, retry_after=0.2)
    hub.faults.fail_next("result", 500)
    task = hub.store.enqueue("echo", {})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        assert await eventually(pilot, lambda: task.id in agent.tasks and agent.tasks[task.id].state is TaskState.DONE)
        stats = app.stats
        assert await eventually(pilot, lambda: len(stats.round_trips) >= 2)

        await pilot.press("c")
        assert await eventually(pilot, lambda: isinstance(app.screen, ConnectivityScreen))
        body = plain_text(app.screen.query_one("#connectivity-body", Static).content, width=200)
        rows = {line.split()[0]: line.split()[1:] for line in body.splitlines() if line.strip()[:1].isalpha()}

        assert rows["heartbeat"][2] == "0"  # 429
        assert int(rows["heartbeat"][3]) == 1  # 5xx
        assert int(rows["poll"][2]) == 1  # 429
        assert int(rows["report"][3]) == 1  # 5xx
        assert int(rows["report"][0]) == 1  # 2xx
        assert int(rows["heartbeat"][0]) >= 2
        assert len(app.screen.query_one("#round-trips").data) >= 2
        assert "median" in static_text(app.screen.query_one("#round-trip-summary", Static))

        await pilot.press("escape")
        assert await eventually(pilot, lambda: not isinstance(app.screen, ConnectivityScreen))


async def test_sort_key_cycles_columns(hub: EmbeddedHub, make_app: MakeApp) -> None:
    for task_type in ("sleep", "echo", "fail"):
        hub.store.enqueue(task_type, {"seconds": 0.01, "message": "x"})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.task_table.row_count == 3
                                and all(record.state is TaskState.DONE for record in app.agent.tasks.values()))
        received_order = shown_ids(app)
        app.task_table.move_cursor(row=1)
        selected = app.task_table.selected_task_id

        await pilot.press("s", "s")
        assert await eventually(pilot, lambda: "sorted by type" in app.table_title.plain)
        types = [app.agent.tasks[task_id].task_type for task_id in shown_ids(app)]

        assert types == ["echo", "fail", "sleep"]
        assert app.task_table.selected_task_id == selected
        assert app.task_table.columns[ColumnKey("type")].label.plain == "Type ▾"

        for _ in range(5):
            await pilot.press("s")
        assert await eventually(pilot, lambda: "sorted by time received" in app.table_title.plain)
        assert shown_ids(app) == received_order


async def test_log_key_hides_and_shows_log(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert app.event_log.display
        table_height = app.task_table.size.height

        await pilot.press("l")
        await pilot.pause()
        assert not app.event_log.display
        assert app.task_table.size.height > table_height

        await pilot.press("l")
        await pilot.pause()
        assert app.event_log.display


async def test_command_palette_offers_every_action(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for expected in ("Pause/resume", "Retry report", "Retry stuck", "Re-run", "Heartbeat", "Poll", "Sort", "Log",
                         "Connectivity", "Older", "Screenshot", "Quit", "Filter", "Details", "Help"):
            assert expected in titles

        await pilot.press("ctrl+p")
        assert await eventually(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"Pause/resume")
        await pilot.pause(0.5)
        await pilot.press("enter")
        paused = await eventually(pilot, lambda: app.agent.paused)

        assert paused


async def test_keymap_remaps_binding_by_id(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app(keymap={"toggle-pause": "P", "help": "f1"})

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.agent.connectivity is Connectivity.ONLINE)
        await pilot.press("p")
        await pilot.pause()
        assert not app.agent.paused

        await pilot.press("P")
        assert await eventually(pilot, lambda: app.agent.paused)

        await pilot.press("f1")
        assert await eventually(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = plain_text(app.screen.query_one("#help-keys", Static).content, width=200)
        assert any(line.split()[:1] == ["P"] and "toggle-pause" in line for line in text.splitlines())


async def test_keymap_errors_are_reported(hub: EmbeddedHub, make_app: MakeApp, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRUST_CONSOLE_KEYMAP", "no-such-binding=z, quit=Q")
    app = make_app(keymap=None)

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        messages = [notification.message for notification in app._notifications]

        assert any("'no-such-binding' is not a binding id" in message for message in messages)
        assert app.keymap == {"quit": "Q"}


async def test_category_filter_survives_filter_text(hub: EmbeddedHub, make_app: MakeApp) -> None:
    hub.store.enqueue_many("echo", {}, 2)
    failing = hub.store.enqueue("fail", {"message": "echo this"})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        assert await eventually(pilot, lambda: app.task_table.row_count == 3
                                and all(record.state is TaskState.DONE for record in app.agent.tasks.values()))
        await pilot.press("6", "slash", *"echo")
        shown = await eventually(pilot, lambda: shown_ids(app) == [failing.id])

        assert shown
        assert app.query_filter.category is TaskCategory.FAILED
        await pilot.press("escape")
        assert await eventually(pilot, lambda: app.task_table.row_count == 3)
        assert app.query_filter.category is None
