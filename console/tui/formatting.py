"""Formatting shared by the console's widgets: ages, durations, times and task states."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from console.records import TaskRecord, TaskState

from .task_view import state_label

STATE_STYLES: dict[TaskState, str] = {
    TaskState.QUEUED: "bold blue",
    TaskState.RUNNING: "bold cyan",
    TaskState.AWAITING_REPORT: "bold yellow",
    TaskState.DONE: "bold green",
    TaskState.REJECTED: "bold magenta",
}


def format_age(seconds: float) -> str:
    """Format an age coarsely (`42s`, `5m`, `3h`, `2d`), so the text of an older row changes less often."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def format_duration(seconds: float) -> str:
    """Format a handler's or a request's duration in milliseconds, seconds or minutes."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def format_clock(moment: datetime) -> str:
    """Format a time of day in the local time zone, to the second."""
    return moment.astimezone().strftime("%H:%M:%S")


def state_style(record: TaskRecord) -> str:
    """Return the colour of the task's state; a failure or a report that keeps failing is red, a stuck one reversed."""
    if record.state is TaskState.AWAITING_REPORT and record.stuck:
        return "bold reverse red"
    if record.success is False or record.last_report_error is not None and record.state is TaskState.AWAITING_REPORT:
        return "bold red"
    return STATE_STYLES[record.state]


def state_text(record: TaskRecord) -> Text:
    """Return the task's state in words and in its colour."""
    return Text(state_label(record), style=state_style(record))


def outcome_text(record: TaskRecord) -> Text:
    """Return the handler's outcome: ok, failed, or empty while it has none."""
    if record.success is None:
        return Text("")
    if record.success:
        return Text("ok", style="green")
    return Text("failed", style="red")
