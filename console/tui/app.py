"""The operator console: a Textual app that hosts one Agent and shows what it does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer
from textual.worker import Worker, WorkerState

from console.agent import Agent
from console.events import (
    AgentEvent,
    AgentStopped,
    DrainStarted,
    IdentityMismatch,
    Paused,
    ReportFailed,
    Resumed,
    TaskEvent,
    TaskReported,
    utc_now,
)

from .confirm_quit import ConfirmQuitScreen, QuitChoice
from .detail import TaskDetail
from .header import StatusHeader
from .identity_mismatch import IdentityMismatchScreen
from .log_pane import EventLog
from .log_records import LogPaneHandler, install_log_handler, remove_log_handler
from .messages import AgentEventPosted, DrainFinished, LogRecordPosted
from .task_table import TaskTable, ids_to_recheck

FLUSH_INTERVAL_SECONDS = 0.25
"""Rows, the header and the detail pane are redrawn at most this often, however fast events come."""

FULL_RECHECK_TICKS = 10
"""Every this many one-second ticks, every row is rechecked: ages in minutes move, and dropped tasks go."""

ALLOWED_AFTER_MISMATCH = frozenset({"quit", "help_quit"})


class TrustConsoleApp(App[int]):
    """Run an Agent's loops as workers, and show their events.

    The app exits with the agent's exit code as both its result and its
    return code: 0 after an operator quit, 2 after an identity mismatch.
    """

    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/resume polling", id="toggle-pause"),
        Binding("r", "retry_report", "Retry report", id="retry-report"),
        Binding("R", "rerun", "Run again", id="rerun"),
        Binding("o", "poll_now", "Poll now", id="poll-now"),
        Binding("s", "save_screenshot", "Screenshot", id="save-screenshot"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        agent: Agent,
        *,
        title: str = "trust-console",
        screenshot_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.agent = agent
        self.title = title
        self.screenshot_dir = screenshot_dir or Path.cwd()
        self.mismatch: IdentityMismatch | None = None
        self.draining = False
        self.next_report_at: dict[str, datetime] = {}
        """When each failing report is due to be sent again, from the ReportFailed events."""
        self._unsubscribe: Callable[[], None] | None = None
        self._log_handler: LogPaneHandler | None = None
        self._header_dirty = True
        self._task_keys_enabled = (False, False)
        self._ticks = 0
        self._agent_closed = False

        # Kept by reference: queries search only the active screen, which may be a modal.
        self.header = StatusHeader(agent, title, id="header")
        self.task_table = TaskTable(id="tasks")
        self.detail = TaskDetail(id="detail")
        self.event_log = EventLog(id="log")

    def compose(self) -> ComposeResult:
        yield self.header
        with Horizontal(id="main"):
            yield self.task_table
            yield self.detail
        yield self.event_log
        yield Footer()

    def on_mount(self) -> None:
        self.task_table.border_title = "Tasks"
        self.detail.border_title = "Task detail"
        self.event_log.border_title = "Events"

        self._unsubscribe = self.agent.bus.subscribe(self._post_agent_event)
        self._log_handler = install_log_handler(self)
        for name, loop in self.agent.loops().items():
            self.run_worker(loop(), name=f"{name} loop", group=name, exit_on_error=False)

        self.task_table.mark_all_dirty(self.agent.tasks)
        self.set_interval(FLUSH_INTERVAL_SECONDS, self._flush_updates)
        self.set_interval(1.0, self._tick)
        self.task_table.focus()

    async def on_unmount(self) -> None:
        await self._close_agent("console closed")

    # Events from the agent.

    def _post_agent_event(self, event: AgentEvent) -> None:
        """Receive an event on the bus; the bus calls this on the app's own event loop."""
        self.post_message(AgentEventPosted(event))

    @on(AgentEventPosted)
    def _show_event(self, message: AgentEventPosted) -> None:
        if not self.task_table.is_attached:
            return  # The app is shutting down.
        event = message.event
        self.event_log.add_event(event)
        self._header_dirty = True
        if isinstance(event, TaskEvent):
            self.task_table.mark_dirty([event.task_id])
        if isinstance(event, ReportFailed) and not event.final and event.retry_in_seconds is not None:
            self.next_report_at[event.task_id] = event.at + timedelta(seconds=event.retry_in_seconds)
        elif isinstance(event, (ReportFailed, TaskReported)):
            self.next_report_at.pop(event.task_id, None)
        if isinstance(event, DrainStarted):
            self.draining = True
            self.header.draining = True
        if isinstance(event, (Paused, Resumed, AgentStopped)):
            self.refresh_bindings()
        if isinstance(event, IdentityMismatch) and self.mismatch is None:
            self.mismatch = event
            self.push_screen(IdentityMismatchScreen(event))
            self.refresh_bindings()

    @on(LogRecordPosted)
    def _show_log_record(self, message: LogRecordPosted) -> None:
        self.event_log.add_record(message.level, message.text, message.at)

    @on(Worker.StateChanged)
    def _report_worker_error(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"The {event.worker.name} stopped with an error: {error!r}", severity="error", markup=False)

    @on(DataTable.RowHighlighted, "#tasks")
    def _show_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.row_key.value)
        self._update_task_keys()

    # Redrawing.

    def _tick(self) -> None:
        """Recheck the rows whose age or running time moves, and the heartbeat's age."""
        self._ticks += 1
        if self._ticks % FULL_RECHECK_TICKS == 0:
            self.task_table.mark_all_dirty(self.agent.tasks)
        else:
            self.task_table.mark_dirty(ids_to_recheck(self.agent.tasks, utc_now()))
        self._header_dirty = True

    def _flush_updates(self) -> None:
        """Apply every change queued since the last flush in one batch."""
        if self._agent_closed or not self.task_table.is_attached:
            return  # The app is shutting down.
        now = utc_now()
        table = self.task_table
        detail = self.detail
        with self.batch_update():
            changed = table.flush(self.agent.tasks, now)
            selected = table.selected_task_id
            if selected != detail.task_id or selected in changed:
                self._show_detail(selected)
            if self._header_dirty:
                self._header_dirty = False
                self.header.show_status(now)
        self._update_task_keys()

    def _show_detail(self, task_id: str | None) -> None:
        record = self.agent.tasks.get(task_id) if task_id else None
        self.detail.show(record, self.next_report_at.get(task_id) if task_id else None)

    def _selected_can_retry(self) -> bool:
        selected = self.task_table.selected_task_id
        return selected is not None and self.agent.can_retry_report(selected)

    def _selected_can_rerun(self) -> bool:
        selected = self.task_table.selected_task_id
        return selected is not None and self.agent.can_rerun(selected)

    def _update_task_keys(self) -> None:
        """Redraw the footer when the retry or run-again key changes between enabled and disabled."""
        enabled = (self._selected_can_retry(), self._selected_can_rerun())
        if enabled != self._task_keys_enabled:
            self._task_keys_enabled = enabled
            self.refresh_bindings()

    # Actions.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enable each key only when its action can do something; after a mismatch, only quit."""
        if self.mismatch is not None:
            return action in ALLOWED_AFTER_MISMATCH
        if action == "retry_report":
            return True if self._selected_can_retry() else None
        if action == "rerun":
            return True if self._selected_can_rerun() else None
        if action in ("toggle_pause", "poll_now") and (self.agent.stopped or self.draining):
            return None
        if action == "poll_now" and self.agent.paused:
            return None
        return True

    def action_toggle_pause(self) -> None:
        if self.agent.paused:
            self.agent.resume()
        else:
            self.agent.pause()
        self._header_dirty = True

    def action_retry_report(self) -> None:
        task_id = self.task_table.selected_task_id
        if task_id is not None and self.agent.retry_report(task_id):
            self.next_report_at.pop(task_id, None)
            self._show_detail(task_id)
            self.notify("Sending the report again now.")

    def action_rerun(self) -> None:
        task_id = self.task_table.selected_task_id
        if task_id is not None and self.agent.rerun(task_id):
            self.next_report_at.pop(task_id, None)
            self.task_table.mark_dirty([task_id])
            self.notify("Running the task's handler again; its new result replaces the failure.")

    def action_poll_now(self) -> None:
        self.agent.poll_now()

    def action_save_screenshot(self) -> None:
        path = self.save_screenshot(path=str(self.screenshot_dir))
        self.notify(f"Screenshot saved to {path}", markup=False)

    async def action_quit(self) -> None:
        """Quit, asking first while tasks are in flight; `ctrl+q` comes here too."""
        if isinstance(self.screen, ConfirmQuitScreen):
            return
        in_flight = self.agent.in_flight
        if in_flight > 0 and not self.agent.stopped:
            self.push_screen(ConfirmQuitScreen(in_flight, draining=self.draining), self._act_on_quit_choice)
            return
        await self._quit()

    async def _act_on_quit_choice(self, choice: QuitChoice | None) -> None:
        if choice is QuitChoice.QUIT_NOW:
            await self._quit()
        elif choice is QuitChoice.FINISH_FIRST and not self.draining:
            self.run_worker(self._drain(), name="drain", group="drain", exclusive=True, exit_on_error=False)

    async def _drain(self) -> None:
        """Let the agent finish and report its in-flight tasks; it stops itself at the end."""
        delivered = await self.agent.drain()
        self.post_message(DrainFinished(delivered))

    @on(DrainFinished)
    async def _quit_after_drain(self, message: DrainFinished) -> None:
        if not message.delivered:
            self.notify("Some results were not reported before the drain timeout.", severity="warning")
        await self._quit()

    async def _quit(self) -> None:
        await self._close_agent("operator quit")
        self.exit(self.agent.exit_code, return_code=self.agent.exit_code)

    async def _close_agent(self, reason: str) -> None:
        """Stop the agent's loops and close its hub client, once; a stopped agent keeps its first reason."""
        if self._agent_closed:
            return
        self._agent_closed = True
        self.agent.stop(reason)
        await self.agent.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._log_handler is not None:
            remove_log_handler(self._log_handler)
            self._log_handler = None
