"""The live task table: one row per task, keyed by task id, updated cell by cell."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from console.records import TaskRecord, TaskState

from .formatting import format_age, format_duration, outcome_text, state_text
from .text import literal, short_id

MAX_TYPE_CHARS = 28

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Task"),
    ("type", "Type"),
    ("state", "State"),
    ("outcome", "Outcome"),
    ("age", "Age"),
    ("duration", "Duration"),
    ("reports", "Reports"),
)

Row = tuple[Text, ...]

RECENT_AGE = timedelta(seconds=65)
"""Rows younger than this show their age in seconds, so they are rechecked every second."""

ACTIVE_STATES = (TaskState.QUEUED, TaskState.RUNNING, TaskState.AWAITING_REPORT)


def ids_to_recheck(tasks: Mapping[str, TaskRecord], now: datetime) -> list[str]:
    """Return the tasks whose age or running time may show a new value after one more second."""
    return [
        task_id
        for task_id, record in tasks.items()
        if record.state in ACTIVE_STATES or now - record.received_at < RECENT_AGE
    ]


def build_row(record: TaskRecord, now: datetime) -> Row:
    """Render one task's cells; the console compares them to skip cells that did not change."""
    if record.duration_seconds is not None:
        duration = Text(format_duration(record.duration_seconds))
    elif record.state is TaskState.RUNNING and record.started_at is not None:
        duration = Text(format_age((now - record.started_at).total_seconds()), style="dim italic")
    else:
        duration = Text("")

    attempts = len(record.report_attempts)
    reports = Text(str(attempts) if attempts else "")
    last = record.report_attempts[-1] if record.report_attempts else None
    if last is not None and last.error is not None:
        status = last.status_code if last.status_code is not None else "no reply"
        reports.append(f" ({status})", style="red")

    return (
        Text(short_id(record.task_id)),
        literal(record.task_type, max_chars=MAX_TYPE_CHARS),
        state_text(record),
        outcome_text(record),
        Text(format_age((now - record.received_at).total_seconds()), justify="right"),
        duration,
        reports,
    )


class TaskTable(DataTable[Text]):
    """Tasks in the order the agent received them; rows change in place so the cursor stays put."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, Row] = {}
        self._dirty: set[str] = set()

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected_task_id(self) -> str | None:
        """The id of the task under the cursor, or None while the table is empty."""
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    def mark_dirty(self, task_ids: Iterable[str]) -> None:
        """Queue rows to be rebuilt at the next flush."""
        self._dirty.update(task_ids)

    def mark_all_dirty(self, task_ids: Iterable[str]) -> None:
        """Queue every task and every shown row, so rows of tasks the agent dropped are removed too."""
        self._dirty.update(task_ids)
        self._dirty.update(self._shown)

    def flush(self, tasks: Mapping[str, TaskRecord], now: datetime) -> set[str]:
        """Add, update and remove rows for the tasks marked dirty; return the ids that changed."""
        if not self._dirty:
            return set()
        dirty, self._dirty = self._dirty, set()
        changed: set[str] = set()

        with self.app.batch_update():
            for task_id in [task_id for task_id in dirty if task_id not in tasks]:
                self._remove(task_id)
                changed.add(task_id)

            # New rows go in the order the agent received their tasks.
            for task_id, record in tasks.items():
                if task_id not in dirty:
                    continue
                row = build_row(record, now)
                if task_id not in self._shown:
                    self.add_row(*row, key=task_id)
                    changed.add(task_id)
                elif self._update(task_id, row):
                    changed.add(task_id)
                self._shown[task_id] = row

        return changed

    def _update(self, task_id: str, row: Row) -> bool:
        """Change only the cells whose text or style differs from what the table shows."""
        updated = False
        for (column_key, _), old, new in zip(COLUMNS, self._shown[task_id], row):
            if old.plain == new.plain and old.style == new.style and old.spans == new.spans:
                continue
            self.update_cell(task_id, column_key, new, update_width=True)
            updated = True
        return updated

    def _remove(self, task_id: str) -> None:
        self._shown.pop(task_id, None)
        try:
            self.remove_row(task_id)
        except RowDoesNotExist:
            pass
