"""The live task table: one row per task, keyed by task id, updated cell by cell.

The table shows every task in flight, the newest finished ones the agent
keeps in memory, and any older ones paged in from the ledger, filtered and
sorted as the operator chose. Rows are added, changed and removed by key in
one batch per flush, so the cursor and the scroll position stay on the
operator's task.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from rich.cells import cell_len
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowDoesNotExist

from console.records import TaskRecord, TaskState

from .formatting import STATE_STYLES, format_age, format_duration, state_style
from .task_view import SORT_ORDERS, SortOrder, TaskQuery, state_label
from .text import literal, short_id

MAX_TYPE_CHARS = 28
MAX_ERROR_CHARS = 48

MAX_FINISHED_ROWS = 1000
"""Finished tasks from the agent's memory that the table shows, newest first; older ones come from the ledger."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Task"),
    ("type", "Type"),
    ("state", "State"),
    ("received", "Received"),
    ("duration", "Duration"),
    ("reports", "Reports"),
    ("error", "Last error"),
)

Row = tuple[Text, ...]

RECENT_AGE = timedelta(seconds=65)
"""Rows younger than this show their age in seconds, so they are rechecked every second."""

ACTIVE_STATES = (TaskState.QUEUED, TaskState.RUNNING, TaskState.AWAITING_REPORT)


class IdCell(Text):
    """The id column's text, carrying the full task id so that sorting can find the task's record."""

    def __init__(self, task_id: str, style: str = "") -> None:
        super().__init__(short_id(task_id), style=style)
        self.task_id = task_id


def live_window(tasks: Mapping[str, TaskRecord], max_finished: int = MAX_FINISHED_ROWS) -> list[TaskRecord]:
    """Return every task in flight and the newest `max_finished` finished tasks of `tasks`."""
    active = [record for record in tasks.values() if record.state in ACTIVE_STATES]
    finished = (record for record in tasks.values() if record.state not in ACTIVE_STATES)
    newest = heapq.nlargest(max_finished, finished, key=lambda record: record.received_at)
    return active + newest


def build_row(record: TaskRecord, now: datetime) -> Row:
    """Render one task's cells; the console compares them to skip cells that did not change."""
    style = state_style(record)
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

    error = record.last_error
    return (
        IdCell(record.task_id, style=STATE_STYLES[record.state].replace("bold", "").strip()),
        literal(record.task_type, max_chars=MAX_TYPE_CHARS),
        Text(state_label(record), style=style),
        Text(format_age((now - record.received_at).total_seconds()) + " ago", justify="right"),
        duration,
        reports,
        literal(error, max_chars=MAX_ERROR_CHARS, style="red") if error else Text(""),
    )


def _same(old: Text, new: Text) -> bool:
    return old.plain == new.plain and old.style == new.style and old.spans == new.spans


class TaskTable(DataTable[Text]):
    """The task table; the app marks rows dirty and calls `flush` at most a few times a second."""

    def __init__(self, *, id: str | None = None, on_cursor_moved: Callable[[], None] | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.on_cursor_moved = on_cursor_moved
        """Called as soon as the cursor moves to another row, before the screen is repainted."""
        self.query_filter = TaskQuery()
        self.sort_index = 0
        self.matching = 0
        """Tasks that match the filter, before the live window cuts old finished ones."""
        self._shown: dict[str, Row] = {}
        self._records: dict[str, TaskRecord] = {}
        self._dirty: set[str] = set()
        self._rebuild = True
        self._newest_shown: datetime | None = None

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        self._label_sorted_column()

    def watch_cursor_coordinate(self, old_coordinate: Coordinate, new_coordinate: Coordinate) -> None:
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        # DataTable's RowHighlighted message reaches the app a repaint or two after the cursor moved.
        # This call lets the app show the new row's task in the same repaint as the cursor.
        if old_coordinate != new_coordinate and self.on_cursor_moved is not None:
            self.on_cursor_moved()

    @property
    def task_sort(self) -> SortOrder:
        return SORT_ORDERS[self.sort_index]

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

    def select_task(self, task_id: str) -> bool:
        """Move the cursor to `task_id`'s row; False when the table does not show it."""
        try:
            row = self.get_row_index(task_id)
        except RowDoesNotExist:
            return False
        self.move_cursor(row=row)
        return True

    # Changing what is shown.

    def set_query(self, query: TaskQuery) -> None:
        if query != self.query_filter:
            self.query_filter = query
            self._rebuild = True

    def cycle_sort(self) -> SortOrder:
        """Sort by the next column in SORT_ORDERS and return that order."""
        self.sort_index = (self.sort_index + 1) % len(SORT_ORDERS)
        self._label_sorted_column()
        self._rebuild = True
        return self.task_sort

    def mark_dirty(self, task_ids: Iterable[str]) -> None:
        """Queue rows to be rebuilt at the next flush."""
        self._dirty.update(task_ids)

    def mark_all_dirty(self) -> None:
        """Recompute at the next flush which tasks the table shows, and rebuild every row."""
        self._rebuild = True

    @property
    def has_pending_changes(self) -> bool:
        return self._rebuild or bool(self._dirty)

    def ids_to_recheck(self, now: datetime) -> list[str]:
        """Return the shown tasks whose age or running time may show a new value after one more second."""
        return [
            task_id
            for task_id, record in self._records.items()
            if record.state in ACTIVE_STATES or now - record.received_at < RECENT_AGE
        ]

    # Applying changes.

    def flush(self, live: Mapping[str, TaskRecord], history: Mapping[str, TaskRecord], now: datetime) -> set[str]:
        """Add, update and remove rows as marked since the last flush; return the ids whose row changed."""
        if not self.has_pending_changes:
            return set()
        selected = self.selected_task_id
        old_row = self.cursor_row
        screen_offset = old_row - round(self.scroll_y)

        with self.app.batch_update():
            if self._rebuild:
                changed, reorder = self._apply_rebuild(live, history, now)
            else:
                changed, reorder = self._apply_dirty(live, history, now)
            if reorder:
                self._reorder()
            self._restore_cursor(selected, old_row, screen_offset)
        return changed

    def _apply_rebuild(
        self, live: Mapping[str, TaskRecord], history: Mapping[str, TaskRecord], now: datetime
    ) -> tuple[set[str], bool]:
        self._rebuild = False
        self._dirty.clear()
        query = self.query_filter
        candidates = {record.task_id: record for record in history.values()}
        candidates.update((record.task_id, record) for record in live_window(live))
        # History may hold an old copy of a task the agent still has; the agent's record is the fresh one.
        candidates.update((task_id, live[task_id]) for task_id in candidates.keys() & live.keys())
        wanted = {task_id: record for task_id, record in candidates.items() if query.matches(record)}
        self.matching = len(wanted)

        changed = {task_id for task_id in self._shown if task_id not in wanted}
        for task_id in changed:
            self._remove(task_id)
        for task_id, record in wanted.items():
            if self._put(record, now):
                changed.add(task_id)
        return changed, True

    def _apply_dirty(
        self, live: Mapping[str, TaskRecord], history: Mapping[str, TaskRecord], now: datetime
    ) -> tuple[set[str], bool]:
        dirty, self._dirty = self._dirty, set()
        changed: set[str] = set()
        reorder = False
        ordered_by_arrival = self.task_sort.column == "received"
        for task_id in dirty:
            record = live.get(task_id) or history.get(task_id)
            if record is None or not self.query_filter.matches(record):
                if task_id in self._shown:
                    self._remove(task_id)
                    self.matching -= 1
                    changed.add(task_id)
                continue
            is_new = task_id not in self._shown
            if not self._put(record, now):
                continue
            changed.add(task_id)
            if is_new:
                self.matching += 1
                newest = self._newest_shown
                # A task newer than every shown one already sits in its place: the end of the table.
                reorder = reorder or not ordered_by_arrival or (newest is not None and record.received_at < newest)
            elif not ordered_by_arrival:
                reorder = True
            if self._newest_shown is None or record.received_at > self._newest_shown:
                self._newest_shown = record.received_at
        return changed, reorder

    def _put(self, record: TaskRecord, now: datetime) -> bool:
        """Add or update `record`'s row; return whether anything on screen changed."""
        task_id = record.task_id
        row = build_row(record, now)
        self._records[task_id] = record
        if task_id not in self._shown:
            self.add_row(*row, key=task_id)
            self._shown[task_id] = row
            if self._newest_shown is None or record.received_at > self._newest_shown:
                self._newest_shown = record.received_at
            return True
        updated = False
        for (column_key, _), old, new in zip(COLUMNS, self._shown[task_id], row):
            if not _same(old, new):
                # Widening is cheap, but asking Textual to fit a narrower cell re-measures the whole
                # column (over a second at 10,000 rows), so columns only ever grow.
                width = cell_len(new.plain if isinstance(new, Text) else str(new))
                wider = width > self.columns[column_key].content_width
                self.update_cell(task_id, column_key, new, update_width=wider)
                updated = True
        self._shown[task_id] = row
        return updated

    def _remove(self, task_id: str) -> None:
        self._shown.pop(task_id, None)
        self._records.pop(task_id, None)
        try:
            self.remove_row(task_id)
        except RowDoesNotExist:
            pass

    def _reorder(self) -> None:
        sort_key = self.task_sort.key
        keys = {task_id: sort_key(record) for task_id, record in self._records.items()}
        self.sort("id", key=lambda cell: keys[cell.task_id])

    def _restore_cursor(self, selected: str | None, old_row: int, screen_offset: int) -> None:
        """Keep the cursor on the operator's task, at the same height on screen, after rows moved."""
        if self.row_count == 0:
            return
        if selected is not None and selected in self._shown:
            row = self.get_row_index(selected)
        else:
            row = min(old_row, self.row_count - 1)
        if row == old_row and self.cursor_row == old_row:
            return
        self.move_cursor(row=row, scroll=False)
        target_y = max(row - screen_offset, 0)
        self.call_after_refresh(self.scroll_to, y=target_y, animate=False)

    def _label_sorted_column(self) -> None:
        for key, label in COLUMNS:
            column = self.columns.get(ColumnKey(key))
            if column is None:
                continue
            column.label = Text(label + (" ▾" if key == self.task_sort.column else ""))
        self.refresh()
