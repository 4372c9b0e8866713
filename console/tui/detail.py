"""The detail pane: everything the agent records about the highlighted task."""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.records import TaskRecord, TaskState

from .formatting import format_clock, format_duration, outcome_text, state_text
from .text import literal, literal_block

MAX_RESULT_CHARS = 2000
"""Maximum characters of a result that the pane shows; the hub accepts results of up to 10,000,000 characters."""

MAX_ERROR_CHARS = 2000

MAX_PRETTY_CHARS = 100_000
"""Results up to this length that are JSON text are shown indented; longer ones as sent."""


def _fields(record: TaskRecord, next_report_at: datetime | None) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    grid.add_row("Task", literal(record.task_id))
    grid.add_row("Type", literal(record.task_type, keep_newlines=True))
    grid.add_row("State", state_text(record))
    if record.success is not None:
        grid.add_row("Outcome", outcome_text(record))
    grid.add_row("Payload", literal(record.payload_summary, keep_newlines=True))
    grid.add_row("Received", format_clock(record.received_at))
    if record.started_at is not None:
        grid.add_row("Started", format_clock(record.started_at))
    if record.finished_at is not None:
        grid.add_row("Finished", format_clock(record.finished_at))
    if record.duration_seconds is not None:
        grid.add_row("Duration", format_duration(record.duration_seconds))
    if record.error is not None:
        grid.add_row("Error", literal_block(record.error, max_chars=MAX_ERROR_CHARS, style="red"))
    if record.rejection is not None:
        grid.add_row("Rejected", literal_block(record.rejection, max_chars=MAX_ERROR_CHARS, style="bold red"))
    if record.stuck and record.state is TaskState.AWAITING_REPORT:
        grid.add_row("Stuck", Text("the result is still undelivered after REPORT_STUCK_AFTER_SECONDS", style="red"))
    if record.state is TaskState.AWAITING_REPORT and next_report_at is not None:
        grid.add_row("Next report", f"{format_clock(next_report_at)} (press r to send it now)")
    return grid


def readable_result(result: str) -> str:
    """Indent a result that is JSON text, so its fields read one per line; return others unchanged."""
    if len(result) > MAX_PRETTY_CHARS:
        return result
    try:
        decoded = json.loads(result)
    except ValueError:
        return result
    return json.dumps(decoded, indent=2, ensure_ascii=False)


def _result(record: TaskRecord) -> Text:
    text = Text("Result\n", style="bold")
    if record.result is None:
        text.append("none yet" if record.success is None else "no data", style="dim")
        return text
    text.append_text(literal_block(readable_result(record.result), max_chars=MAX_RESULT_CHARS))
    return text


def _report_attempts(record: TaskRecord) -> Table | Text:
    if not record.report_attempts:
        return Text("Report attempts: none yet", style="bold")

    table = Table(title="Report attempts", title_justify="left", title_style="bold", box=None, padding=(0, 1))
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("At", no_wrap=True)
    table.add_column("Status", no_wrap=True, min_width=8)
    table.add_column("Error", overflow="fold")
    for number, attempt in enumerate(record.report_attempts, start=1):
        status = Text("no reply" if attempt.status_code is None else str(attempt.status_code))
        status.stylize("red" if attempt.error is not None else "green")
        error = literal_block(attempt.error, max_chars=MAX_ERROR_CHARS) if attempt.error is not None else Text("")
        table.add_row(str(number), format_clock(attempt.at), status, error)
    return table


def render_detail(
    record: TaskRecord | None, next_report_at: datetime | None = None, missing_id: str | None = None
) -> Group | Text:
    """Render one task, or a hint while no task is highlighted or once `missing_id` is no longer held."""
    if record is None and missing_id is not None:
        gone = Text("Task ", style="dim italic")
        gone.append_text(literal(missing_id))
        gone.append(" is no longer held by the console; `trust-console tasks` lists it from the ledger.")
        return gone
    if record is None:
        return Text("No task selected. Tasks appear here when the hub hands them out.", style="dim italic")
    return Group(_fields(record, next_report_at), Text(""), _report_attempts(record), Text(""), _result(record))


class TaskDetail(VerticalScroll):
    """A scrollable view of one task's record."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.task_id: str | None = None
        self._body = Static(render_detail(None), id="detail-body")

    def compose(self) -> ComposeResult:
        yield self._body

    def show(
        self, record: TaskRecord | None, next_report_at: datetime | None = None, missing_id: str | None = None
    ) -> None:
        """Show `record`, keeping the scroll position when it is the task already shown."""
        if record is None or record.task_id != self.task_id:
            self.scroll_home(animate=False)
        self.task_id = None if record is None else record.task_id
        self._body.update(render_detail(record, next_report_at, missing_id))
