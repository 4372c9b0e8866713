"""The task details screen that `enter` opens: the whole record of one task, with the header kept on top."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from console.records import TaskRecord

from .detail import TaskDetail
from .header import StatusHeader


class TaskDetailScreen(Screen[None]):
    """One task's payload summary, result, error and report attempts; `esc` goes back to the table.

    The app's keys for the task (retry its report, run it again) act on the task shown here.
    """

    BINDINGS = [Binding("escape", "back", "Back", id="detail.back")]

    def __init__(self, header: StatusHeader, task_id: str) -> None:
        super().__init__()
        self.header = header
        self.task_id = task_id
        self.detail = TaskDetail(id="detail-screen-body")

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.detail
        yield Footer()

    def on_mount(self) -> None:
        self.detail.border_title = "Task details"
        self.detail.focus()

    def show(self, record: TaskRecord | None, next_report_at: datetime | None) -> None:
        """Redraw the task; a task the console no longer contains is shown as gone."""
        self.detail.show(record, next_report_at, missing_id=self.task_id)

    def action_back(self) -> None:
        self.dismiss()
