"""The operator console: a Textual app that hosts one Agent and shows what it does."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input
from textual.worker import Worker, WorkerState

from console.agent import Agent
from console.events import (
    AgentEvent,
    DrainStarted,
    IdentityMismatch,
    ReportFailed,
    TaskEvent,
    TaskReported,
    utc_now,
)
from console.records import TaskRecord

from .actions import OperatorActions
from .connectivity_screen import ConnectivityScreen
from .connectivity_stats import ConnectivityStats
from .counters import CategoryChosen, StateCounters
from .detail import TaskDetail
from .detail_screen import TaskDetailScreen
from .header import StatusHeader
from .help_screen import HelpSection
from .history import History
from .identity_mismatch import IdentityMismatchScreen
from .keymap import keymap_from_environment
from .log_pane import EventLog
from .log_records import LogPaneHandler, install_log_handler
from .messages import AgentEventsPending, DrainFinished, LogRecordPosted
from .task_table import TaskTable
from .task_view import TaskCategory, TaskQuery, count_categories
from .text import literal

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware; tests pass a frozen one."""

FLUSH_INTERVAL_SECONDS = 0.25
"""Rows, counters, the header and the detail pane are redrawn at most this often, however fast events come."""

FULL_RECHECK_TICKS = 10
"""Every this many one-second ticks, every row is rebuilt: ages in minutes move, and dropped tasks go."""

MAX_PENDING_EVENTS = 10_000
"""Events buffered between two batches; past this the oldest are dropped from the log pane, not from the table."""

CATEGORY_BINDINGS = [
    Binding("0", "show_category('all')", "Show all tasks", id="show-all", show=False),
    *(
        Binding(category.key, f"show_category('{category.name}')", f"Show {category.value} tasks", id=category.binding_id,
                show=False)
        for category in TaskCategory
    ),
]


class TrustConsoleApp(OperatorActions, App[int]):
    """Run an Agent's loops as workers, and show their events.

    The app exits with the agent's exit code as both its result and its
    return code: 0 after an operator quit, 2 after an identity mismatch.
    """

    CSS_PATH = "app.tcss"

    BINDINGS = [
        # Help and Quit come first, so a narrow terminal's footer still shows them.
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear_filter", "Clear filter", id="clear-filter"),
        Binding("enter", "details", "Details", id="details"),
        Binding("p", "toggle_pause", "Pause/resume", id="toggle-pause"),
        Binding("r", "retry_report", "Retry report", id="retry-report"),
        Binding("R", "retry_all_stuck", "Retry stuck", id="retry-all-stuck"),
        Binding("x", "rerun", "Re-run", id="rerun"),
        Binding("h", "heartbeat_now", "Heartbeat", id="heartbeat-now"),
        Binding("f", "poll_now", "Poll", id="poll-now"),
        Binding("s", "cycle_sort", "Sort", id="cycle-sort"),
        Binding("l", "toggle_log", "Log", id="toggle-log"),
        Binding("c", "connectivity", "Connectivity", id="connectivity"),
        Binding("o", "load_older", "Older", id="load-older"),
        Binding("ctrl+s", "save_screenshot", "Screenshot", id="save-screenshot", show=False),
        *CATEGORY_BINDINGS,
    ]

    def __init__(
        self,
        agent: Agent,
        *,
        title: str = "trust-console",
        screenshot_dir: Path | None = None,
        clock: Clock = utc_now,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.agent = agent
        self.title = title
        self.screenshot_dir = screenshot_dir or Path.cwd()
        self.clock = clock
        self.mismatch: IdentityMismatch | None = None
        self.draining = False
        self.stats = ConnectivityStats()
        self.history = History()
        self.query_filter = TaskQuery()
        self.table_title = Text()
        """The task table's border title: filter, row count and sort order."""
        self.table_subtitle = ""
        self.next_report_at: dict[str, datetime] = {}
        """When each failing report is due to be sent again, from the ReportFailed events."""

        known_ids = {binding.id for binding in self._all_bindings() if binding.id}
        if keymap is None:
            keymap, self._keymap_errors = keymap_from_environment(known_ids)
        else:
            self._keymap_errors = []
        self.keymap = keymap
        if keymap:
            self.set_keymap(keymap)

        self._unsubscribe: Callable[[], None] | None = None
        self._log_handler: LogPaneHandler | None = None
        self._pending_events: deque[AgentEvent] = deque(maxlen=MAX_PENDING_EVENTS)
        self._dropped_events = 0
        self._events_posted = False
        self._header_dirty = True
        self._counts_dirty = True
        self._connectivity_dirty = False
        self._detail_dirty = False
        self._task_keys_enabled: tuple[bool | None, ...] = ()
        self._ticks = 0
        self._agent_closed = False

        # Kept by reference: queries search only the active screen, which may be a modal.
        self.header = StatusHeader(agent, title, self.stats, id="header")
        self.counters = StateCounters(id="counters")
        self.filter_input = Input(placeholder="Filter by id, type, state or error text; esc clears", id="filter")
        self.task_table = TaskTable(id="tasks", on_cursor_moved=self._show_detail)
        self.detail = TaskDetail(id="detail")
        self.event_log = EventLog(id="log")

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.counters
        with Horizontal(id="main"):
            with Vertical(id="task-list"):
                yield self.filter_input
                yield self.task_table
            yield self.detail
        yield self.event_log
        yield Footer()

    def on_mount(self) -> None:
        self.task_table.border_title = "Tasks"
        self.detail.border_title = "Task detail"
        self.event_log.border_title = "Events"
        self.filter_input.display = False
        for error in self._keymap_errors:
            self.notify(f"TRUST_CONSOLE_KEYMAP: {error}", severity="warning", markup=False)

        self._unsubscribe = self.agent.bus.subscribe(self._receive_event)
        self._log_handler = install_log_handler(self)
        for name, loop in self.agent.loops().items():
            self.run_worker(loop(), name=f"{name} loop", group=name, exit_on_error=False)

        self._flush_timer = self.set_interval(FLUSH_INTERVAL_SECONDS, self._flush_updates)
        self.set_interval(1.0, self._tick)
        self.task_table.focus()
        self._flush_updates()

    async def on_unmount(self) -> None:
        await self._close_agent("console closed")

    # Events from the agent.

    def _receive_event(self, event: AgentEvent) -> None:
        """Buffer an event from the bus, which calls this on the app's own event loop."""
        if len(self._pending_events) == self._pending_events.maxlen:
            self._dropped_events += 1
        self._pending_events.append(event)
        if not self._events_posted:
            self._events_posted = True
            self.post_message(AgentEventsPending())

    @on(AgentEventsPending)
    def _apply_events(self) -> None:
        self._events_posted = False
        if not self.task_table.is_attached:
            return  # The app is shutting down.
        events = list(self._pending_events)
        self._pending_events.clear()
        if self._dropped_events:
            self.event_log.add_record(30, f"{self._dropped_events} events arrived too fast to log", self.clock())
            self._dropped_events = 0

        # Nothing is drawn here: the flush draws rows, log lines, the header and the footer keys
        # together, so a batch of events costs one repaint.
        with self.batch_update():
            for event in events:
                self._apply_event(event)
        self._header_dirty = True
        self._flush_timer.resume()

    def _apply_event(self, event: AgentEvent) -> None:
        """Record one event's effects for the next flush."""
        self.event_log.add_event(event)
        if self.stats.record(event):
            self._connectivity_dirty = True
        if isinstance(event, TaskEvent):
            self.task_table.mark_dirty([event.task_id])
            self._counts_dirty = True
            # The detail views show more than a row does, so a change to their task redraws them.
            detail_task_ids = {self.detail.task_id}
            if isinstance(self.screen, TaskDetailScreen):
                detail_task_ids.add(self.screen.task_id)
            if event.task_id in detail_task_ids:
                self._detail_dirty = True
        if isinstance(event, ReportFailed) and not event.final and event.retry_in_seconds is not None:
            self.next_report_at[event.task_id] = event.at + timedelta(seconds=event.retry_in_seconds)
        elif isinstance(event, (ReportFailed, TaskReported)):
            self.next_report_at.pop(event.task_id, None)
        if isinstance(event, DrainStarted):
            self.draining = True
        if isinstance(event, IdentityMismatch) and self.mismatch is None:
            self.mismatch = event
            self.push_screen(IdentityMismatchScreen(event))

    # Textual registers @on handlers only on the App class itself, not on the OperatorActions mixin.
    @on(DrainFinished)
    async def _quit_after_drain(self, message: DrainFinished) -> None:
        if not message.delivered:
            self.notify("Some results were not reported before the drain timeout.", severity="warning")
        await self._quit()

    @on(LogRecordPosted)
    def _show_log_record(self, message: LogRecordPosted) -> None:
        self.event_log.add_record(message.level, message.text, message.at)

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "history":
            self._on_history_worker(worker, event.state)
            return
        if event.state is WorkerState.ERROR:
            self.notify(f"The {worker.name} stopped with an error: {worker.error!r}", severity="error", markup=False)

    @on(DataTable.RowHighlighted, "#tasks")
    def _show_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.detail.task_id != self.task_table.selected_task_id:
            self._show_detail()
        self._update_task_keys()

    @on(DataTable.RowSelected, "#tasks")
    def _open_selected(self, event: DataTable.RowSelected) -> None:
        self._open_details(event.row_key.value)

    @on(CategoryChosen)
    def _choose_category(self, message: CategoryChosen) -> None:
        self._set_category(message.category)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_query(TaskQuery(event.value, self.query_filter.category))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.task_table.focus()

    # Redrawing.

    def _tick(self) -> None:
        """Recheck the rows whose age or running time moves, the heartbeat's age and the connectivity view."""
        self._ticks += 1
        if self._ticks % FULL_RECHECK_TICKS == 0:
            self.task_table.mark_all_dirty()
            self._counts_dirty = True
        else:
            self.task_table.mark_dirty(self.task_table.ids_to_recheck(self.clock()))
        self._header_dirty = True
        self._connectivity_dirty = True
        self._flush_updates()

    def _flush_updates(self) -> None:
        """Apply every change queued since the last flush in one batch; idle, the flush timer pauses."""
        if self._agent_closed or not self.task_table.is_attached:
            return  # The app is shutting down.
        now = self.clock()
        table = self.task_table
        with self.batch_update():
            changed = table.flush(self.agent.tasks, self.history.records, now)
            if changed:
                self._counts_dirty = True
            if self._counts_dirty:
                self._counts_dirty = False
                self._show_counts()
            self._show_table_titles()
            self.event_log.write_pending()
            selected = table.selected_task_id
            if selected != self.detail.task_id or selected in changed or self._detail_dirty:
                self._show_detail()
            if isinstance(self.screen, TaskDetailScreen) and (self.screen.task_id in changed or self._detail_dirty):
                self._show_detail_screen(self.screen)
            self._detail_dirty = False
            if self._header_dirty:
                self._header_dirty = False
                self._refresh_headers(now)
            if self._connectivity_dirty and isinstance(self.screen, ConnectivityScreen):
                self.screen.show(now)
            self._connectivity_dirty = False
        self._update_task_keys()
        if not table.has_pending_changes:
            self._flush_timer.pause()

    def _refresh_headers(self, now: datetime) -> None:
        headers = {self.header, *self.screen.query(StatusHeader)}
        for header in headers:
            if header.is_attached:
                header.draining = self.draining
                header.show_status(now)

    def _known_records(self) -> dict[str, TaskRecord]:
        """Every task the console holds: the agent's, and older ones paged in from the ledger."""
        return {**self.history.records, **self.agent.tasks}

    def _show_counts(self) -> None:
        known = self._known_records()
        self.counters.show(len(known), count_categories(known.values()), self.query_filter.category)

    def _show_table_titles(self) -> None:
        table = self.task_table
        title = Text("Tasks")
        if self.query_filter.category is not None:
            title.append(f" · {self.query_filter.category.value}")
        if self.query_filter.text.strip():
            title.append(" · filter ")
            title.append_text(literal(repr(self.query_filter.text.strip()), max_chars=40))
        title.append(f" · {table.row_count:,} shown")
        title.append(f" · sorted by {table.task_sort.label}")
        if title != self.table_title:
            self.table_title = title
            table.border_title = title
        subtitle = "o loads older tasks from the ledger" if self.history.can_load else ""
        if self.history.loading:
            subtitle = "loading older tasks from the ledger…"
        elif self.history.full:
            subtitle = "older tasks: trust-console tasks lists them"
        if subtitle != self.table_subtitle:
            self.table_subtitle = subtitle
            table.border_subtitle = subtitle

    def _lookup(self, task_id: str | None) -> TaskRecord | None:
        if task_id is None:
            return None
        return self.agent.tasks.get(task_id) or self.history.records.get(task_id)

    def _show_detail(self) -> None:
        task_id = self.task_table.selected_task_id
        self.detail.show(self._lookup(task_id), self.next_report_at.get(task_id) if task_id else None)

    def _show_detail_screen(self, screen: TaskDetailScreen) -> None:
        screen.show(self._lookup(screen.task_id), self.next_report_at.get(screen.task_id))

    @property
    def selected_task_id(self) -> str | None:
        """The task the task keys act on: the one in the details view, else the one under the table's cursor."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, TaskDetailScreen):
                return screen.task_id
        return self.task_table.selected_task_id

    def _update_task_keys(self) -> None:
        """Redraw the footer when a key becomes available or unavailable.

        Textual rebuilds the whole footer on every refresh_bindings(), which lays
        out the screen again, so it is called only when a key's state changed.
        """
        if not self.screen_stack:
            return  # The app is shutting down.
        enabled = tuple(self.check_action(binding.action, ()) for binding in self._all_bindings())
        if enabled != self._task_keys_enabled:
            self._task_keys_enabled = enabled
            self.refresh_bindings()

    # Help and the command palette.

    @classmethod
    def _all_bindings(cls) -> list[Binding]:
        bindings = [*cls.BINDINGS, *TaskDetailScreen.BINDINGS, *ConnectivityScreen.BINDINGS]
        return [binding for binding in bindings if isinstance(binding, Binding)]

    def key_display(self, binding: Binding) -> str:
        """Show the keys of `binding` as the operator's keymap sets them."""
        keys = self.keymap.get(binding.id or "", binding.key)
        return ", ".join(self.get_key_display(Binding(key.strip(), "")) for key in keys.split(","))

    def help_sections(self) -> list[HelpSection]:
        """List every key by where it applies, for the help screen."""
        by_id = {binding.id: binding for binding in self._all_bindings()}

        def rows(ids: Iterable[str]) -> list[tuple[str, str, str]]:
            return [(self.key_display(by_id[binding_id]), ACTION_HELP[binding_id], binding_id) for binding_id in ids]

        palette = [(self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "")), "Command palette: every action by name", "")]
        return [
            ("Anywhere", rows(["help", "toggle-pause", "heartbeat-now", "poll-now", "retry-all-stuck", "connectivity",
                               "save-screenshot", "quit"]) + palette),
            ("Task list", rows(["filter", "clear-filter", "details", "cycle-sort", "toggle-log", "load-older",
                                "show-all", *(category.binding_id for category in TaskCategory)])),
            ("Selected task", rows(["retry-report", "rerun"])),
            ("Details and connectivity views", rows(["detail.back", "connectivity.back"])),
        ]

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Offer every console action in the command palette, after Textual's own commands."""
        yield from super().get_system_commands(screen)
        for binding in self._all_bindings():
            if binding.id in ACTION_HELP and binding.id not in ("detail.back", "connectivity.back"):
                title = binding.description or ACTION_HELP[binding.id]
                help_text = f"{ACTION_HELP[binding.id]} (key {self.key_display(binding)})"
                yield SystemCommand(title, help_text, partial(self._run_from_palette, binding.action))

    async def _run_from_palette(self, action: str) -> None:
        name = action.partition("(")[0]
        if self.check_action(name, ()) is not True:
            self.notify(f"{ACTION_HELP_BY_ACTION.get(name, name)}: not possible right now.", severity="warning")
            return
        await self.run_action(action)


ACTION_HELP: dict[str, str] = {
    "help": "Show this list of keys",
    "filter": "Filter the tasks by id, type, state or error text",
    "clear-filter": "Clear the filter and the chosen counter",
    "details": "Open the selected task's details: payload summary, result, error, report attempts",
    "toggle-pause": "Pause or resume polling; heartbeats, running handlers and reports go on",
    "retry-report": "Send the selected task's failed report again now (awaiting report only)",
    "retry-all-stuck": "Send every stuck report again now, after confirmation",
    "rerun": "Run the selected failed task again, after confirmation (failure not yet delivered only)",
    "heartbeat-now": "Send a heartbeat now",
    "poll-now": "Poll the hub for tasks now",
    "cycle-sort": "Sort by the next column",
    "toggle-log": "Show or hide the event log",
    "connectivity": "Open the connectivity view: round trips, replies per endpoint, rate limits",
    "load-older": "Load older tasks from the ledger",
    "save-screenshot": "Save an SVG screenshot",
    "quit": "Quit; asks first while tasks are in flight",
    "show-all": "Show all tasks",
    **{category.binding_id: f"Show only {category.value} tasks" for category in TaskCategory},
    "detail.back": "Go back to the task list",
    "connectivity.back": "Go back to the task list",
}
"""What each binding does, by binding id, for the help screen and the command palette."""

ACTION_HELP_BY_ACTION = {
    binding.action.partition("(")[0]: ACTION_HELP[binding.id]
    for binding in TrustConsoleApp.BINDINGS
    if isinstance(binding, Binding) and binding.id in ACTION_HELP
}
