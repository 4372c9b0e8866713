"""The console's operator actions: what each key does, and when it applies."""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.worker import Worker, WorkerState

from .confirm_action import ConfirmActionScreen
from .confirm_quit import ConfirmQuitScreen, QuitChoice
from .connectivity_screen import ConnectivityScreen
from .detail_screen import TaskDetailScreen
from .header import StatusHeader
from .help_screen import HelpScreen
from .history import read_older_page
from .log_records import remove_log_handler
from .messages import DrainFinished
from .task_table import live_window
from .task_view import TaskCategory, TaskQuery
from .text import literal

ALLOWED_AFTER_MISMATCH = frozenset({"quit", "help_quit"})

MAIN_SCREEN_ACTIONS = frozenset(
    {"filter", "clear_filter", "details", "cycle_sort", "toggle_log", "load_older", "show_category"}
)
"""Actions on the task list, which do nothing while the details or connectivity view covers it."""


class OperatorActions:
    """Mixed into TrustConsoleApp: the actions behind the keys, gated by check_action."""

    def _on_main_screen(self) -> bool:
        return len(self.screen_stack) == 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enable each key only where it can do something; False also hides it from the footer."""
        if self.mismatch is not None:
            return action in ALLOWED_AFTER_MISMATCH
        if isinstance(self.screen, (ConfirmQuitScreen, ConfirmActionScreen)):
            return False  # A dialog's own keys apply while it is open; the app's would mislead.
        if action in MAIN_SCREEN_ACTIONS and not self._on_main_screen():
            return False
        agent = self.agent
        selected = self.selected_task_id
        active = not (agent.stopped or self.draining)
        match action:
            case "details":
                return selected is not None
            case "clear_filter":
                return self.query_filter.active or bool(self.filter_input.display)
            case "retry_report":
                return selected is not None and agent.can_retry_report(selected)
            case "rerun":
                return selected is not None and agent.can_rerun(selected)
            case "retry_all_stuck":
                return not agent.stopped and bool(agent.stuck_task_ids())
            case "toggle_pause":
                return active
            case "poll_now":
                return active and not agent.paused
            case "heartbeat_now":
                return not agent.stopped
            case "load_older":
                return self.history.can_load
            case "connectivity":
                return not isinstance(self.screen, ConnectivityScreen)
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def action_filter(self) -> None:
        self.filter_input.display = True
        self.filter_input.focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.filter_input.display = False
        self._set_query(TaskQuery())
        self.task_table.focus()
        self.refresh_bindings()

    def action_show_category(self, name: str) -> None:
        category = None if name == "all" else TaskCategory[name]
        self._set_category(category)

    def _set_category(self, category: TaskCategory | None) -> None:
        """Show only `category`'s tasks; choosing the category already shown shows all tasks again."""
        if category is not None and category is self.query_filter.category:
            category = None
        self._set_query(TaskQuery(self.query_filter.text, category))

    def _set_query(self, query: TaskQuery) -> None:
        self.query_filter = query
        self.task_table.set_query(query)
        self._counts_dirty = True
        self._flush_timer.resume()

    def action_details(self) -> None:
        self._open_details(self.task_table.selected_task_id)

    def _open_details(self, task_id: str | None) -> None:
        if task_id is None or not self._on_main_screen():
            return
        screen = TaskDetailScreen(self._new_header(), task_id)
        self.push_screen(screen, lambda _: self._after_view_closed())
        self._show_detail_screen(screen)

    def action_connectivity(self) -> None:
        if isinstance(self.screen, ConnectivityScreen):
            return
        self.push_screen(ConnectivityScreen(self._new_header(), self.agent, self.stats),
                         lambda _: self._after_view_closed())

    def _new_header(self) -> StatusHeader:
        header = StatusHeader(self.agent, self.title, self.stats)
        header.draining = self.draining
        return header

    def _after_view_closed(self) -> None:
        self._header_dirty = True
        self._show_detail()
        self._flush_timer.resume()

    def action_toggle_pause(self) -> None:
        if self.agent.paused:
            self.agent.resume()
        else:
            self.agent.pause()
        self._header_dirty = True
        self._flush_updates()

    def action_retry_report(self) -> None:
        task_id = self.selected_task_id
        if task_id is not None and self.agent.retry_report(task_id):
            self.next_report_at.pop(task_id, None)
            self._detail_dirty = True
            self._flush_timer.resume()
            self.notify("Sending the report again now.")

    def action_retry_all_stuck(self) -> None:
        stuck = self.agent.stuck_task_ids()
        if not stuck:
            return
        message = Text(
            f"{len(stuck)} result(s) are still undelivered after REPORT_STUCK_AFTER_SECONDS. Send every one of"
            " them again now, instead of after its backoff? The hub may still be failing or rate limiting."
        )
        self.push_screen(ConfirmActionScreen("Retry every stuck report?", message, "Retry all"),
                         self._retry_all_stuck_confirmed)

    def _retry_all_stuck_confirmed(self, confirmed: bool | None) -> None:
        if not confirmed:
            return
        count = self.agent.retry_all_stuck()
        self.next_report_at.clear()
        self._detail_dirty = True
        self._flush_timer.resume()
        self.notify(f"Retrying {count} stuck report(s) now.")

    def action_rerun(self) -> None:
        task_id = self.selected_task_id
        record = self._lookup(task_id)
        if task_id is None or record is None or not self.agent.can_rerun(task_id):
            return
        message = Text("Run task ")
        message.append_text(literal(task_id, style="bold"))
        message.append(" (")
        message.append_text(literal(record.task_type, max_chars=40))
        message.append(") again? Its failure is not yet delivered; the new result is reported instead of it.")
        self.push_screen(ConfirmActionScreen("Run the failed task again?", message, "Run again"),
                         partial(self._rerun_confirmed, task_id))

    def _rerun_confirmed(self, task_id: str, confirmed: bool | None) -> None:
        if not confirmed:
            return
        if self.agent.rerun(task_id):
            self.next_report_at.pop(task_id, None)
            self.task_table.mark_dirty([task_id])
            self._detail_dirty = True
            self._flush_timer.resume()
            self.notify("Running the task's handler again; its new result replaces the failure.")
        else:
            self.notify("The task can no longer run again: its failure was delivered meanwhile.", severity="warning")

    def action_heartbeat_now(self) -> None:
        self.agent.heartbeat_now()
        self.notify("Sending a heartbeat now.")

    def action_poll_now(self) -> None:
        self.agent.poll_now()
        self.notify("Polling the hub now.")

    def action_cycle_sort(self) -> None:
        self.task_table.cycle_sort()
        self._flush_updates()

    def action_toggle_log(self) -> None:
        self.event_log.display = not self.event_log.display

    def action_load_older(self) -> None:
        if not self.history.can_load:
            return
        window = live_window(self.agent.tasks)
        times = [record.received_at for record in window]
        times.extend(record.received_at for record in self.history.records.values())
        before = min(times, default=None)
        self.history.loading = True
        self._show_table_titles()
        read_page = partial(read_older_page, self.agent.ledger.path.parent, before)
        self.run_worker(read_page, name="ledger page", group="history", thread=True, exclusive=True,
                        exit_on_error=False)
        self.refresh_bindings()

    def _on_history_worker(self, worker: Worker[object], state: WorkerState) -> None:
        if state is WorkerState.SUCCESS:
            page, more = worker.result  # type: ignore[misc]
            added = self.history.add_page(page, more)
            self.history.loading = False
            self.task_table.mark_all_dirty()
            self._counts_dirty = True
            self._flush_updates()
            self.notify(f"Loaded {added} older task(s) from the ledger." if added else "No older tasks in the ledger.")
        elif state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.history.loading = False
            if state is WorkerState.ERROR:
                self.notify(f"Reading older tasks from the ledger failed: {worker.error}", severity="error",
                            markup=False)
        self.refresh_bindings()

    def action_save_screenshot(self) -> None:
        path = self.save_screenshot(path=str(self.screenshot_dir))
        self.notify(f"Screenshot saved to {path}", markup=False)

    async def action_quit(self) -> None:
        """Quit, asking first while tasks are in flight; `ctrl+q` comes here too."""
        if isinstance(self.screen, ConfirmQuitScreen):
            return
        if getattr(self.agent, "attached", False):
            await self._quit()  # Detaching leaves the agent and its tasks running.
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
