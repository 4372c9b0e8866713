"""The detail pane: everything the agent records about the highlighted task."""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

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


class TaskDetail(ScrollView):
    """A scrollable view of one task's record.

    The view renders the record into lines itself (Textual's line API), so showing
    another task repaints this pane alone. Textual lays out the whole screen again
    whenever a widget's height or scrollable size changes, which with thousands of
    rows takes longer than the 50 ms a key press may take. So the scrollable
    height counts whole pages of the pane: it changes only when a record needs
    another page, and the last page may end in blank lines.
    """

    DEFAULT_CSS = """
    TaskDetail {
        overflow-x: hidden;
        overflow-y: scroll;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.task_id: str | None = None
        self._content: RenderableType = render_detail(None)
        self._lines: list[Strip] = []

    def on_resize(self) -> None:
        # Lines are wrapped to the width they were rendered at.
        self._render_content()

    def show(
        self, record: TaskRecord | None, next_report_at: datetime | None = None, missing_id: str | None = None
    ) -> None:
        """Show `record`, keeping the scroll position when it is the task already shown."""
        if record is None or record.task_id != self.task_id:
            self.scroll_home(animate=False, immediate=True)
        self.task_id = None if record is None else record.task_id
        self._content = render_detail(record, next_report_at, missing_id)
        self._render_content()

    @property
    def content(self) -> RenderableType:
        """The renderable of the record shown, before it is wrapped to the pane's width."""
        return self._content

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        return self._lines[index].crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _render_content(self) -> None:
        region = self.scrollable_content_region
        if region.width <= 0 or not self.is_mounted:
            return
        console = self.app.console
        options = console.options.update_width(region.width)
        self._lines = Strip.from_lines(console.render_lines(self._content, options, style=self.rich_style, pad=False))

        page = max(region.height, 1)
        height = -(-len(self._lines) // page) * page
        size = Size(region.width, max(height, page))
        if size != self.virtual_size:
            self.virtual_size = size
        self.refresh()
