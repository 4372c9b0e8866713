"""Formatting shared by the console's widgets: ages, durations, times and task states."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from console.records import TaskRecord, TaskState

STATE_STYLES: dict[TaskState, str] = {
    TaskState.QUEUED: "bold blue",
    TaskState.RUNNING: "bold cyan",
    TaskState.AWAITING_REPORT: "bold yellow",
    TaskState.DONE: "bold green",
    TaskState.REJECTED: "bold red",
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


def state_text(record: TaskRecord) -> Text:
    """Return the task's state in its colour; a report that keeps failing is shown in red, a stuck one reversed."""
    style = STATE_STYLES[record.state]
    if record.state is TaskState.AWAITING_REPORT and record.stuck:
        return Text(f"{record.state} (stuck)", style="bold reverse red")
    if record.state is TaskState.AWAITING_REPORT and record.last_report_error is not None:
        return Text(f"{record.state} (retrying)", style="bold red")
    return Text(str(record.state), style=style)


def outcome_text(record: TaskRecord) -> Text:
    """Return the handler's outcome: ok, failed, or empty while it has none."""
    if record.success is None:
        return Text("")
    if record.success:
        return Text("ok", style="green")
    return Text("failed", style="red")
