"""Which tasks the table shows and in what order: state categories, the text filter and sort orders."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.records import TaskRecord, TaskState


class TaskCategory(enum.Enum):
    """A counter above the table; choosing one shows only its tasks.

    The categories overlap where an operator expects them to: every stuck
    task is also awaiting report, and "failed" counts every task whose
    handler failed, whether its failure is delivered yet or not.
    """

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_REPORT = "awaiting report"
    STUCK = "stuck"
    REJECTED = "rejected"
    FAILED = "failed"
    DONE = "done"

    @property
    def key(self) -> str:
        """The digit that chooses this counter, 1 to 7 in display order."""
        return str(list(TaskCategory).index(self) + 1)

    @property
    def binding_id(self) -> str:
        return "show-" + self.value.replace(" ", "-")


def in_category(record: TaskRecord, category: TaskCategory) -> bool:
    """Check whether `record` counts towards `category`."""
    match category:
        case TaskCategory.QUEUED:
            return record.state is TaskState.QUEUED
        case TaskCategory.RUNNING:
            return record.state is TaskState.RUNNING
        case TaskCategory.AWAITING_REPORT:
            return record.state is TaskState.AWAITING_REPORT
        case TaskCategory.STUCK:
            return record.state is TaskState.AWAITING_REPORT and record.stuck
        case TaskCategory.REJECTED:
            return record.state is TaskState.REJECTED
        case TaskCategory.FAILED:
            return record.success is False
        case TaskCategory.DONE:
            return record.state is TaskState.DONE


def count_categories(records: Iterable[TaskRecord]) -> dict[TaskCategory, int]:
    """Count the records in each category; a record can count in more than one."""
    counts = dict.fromkeys(TaskCategory, 0)
    for record in records:
        state = record.state
        if state is TaskState.QUEUED:
            counts[TaskCategory.QUEUED] += 1
        elif state is TaskState.RUNNING:
            counts[TaskCategory.RUNNING] += 1
        elif state is TaskState.AWAITING_REPORT:
            counts[TaskCategory.AWAITING_REPORT] += 1
            if record.stuck:
                counts[TaskCategory.STUCK] += 1
        elif state is TaskState.REJECTED:
            counts[TaskCategory.REJECTED] += 1
        elif state is TaskState.DONE:
            counts[TaskCategory.DONE] += 1
        if record.success is False:
            counts[TaskCategory.FAILED] += 1
    return counts


def state_label(record: TaskRecord) -> str:
    """Describe the task's state in words, with "stuck" or "failed" added where they apply."""
    label = str(record.state)
    if record.state is TaskState.AWAITING_REPORT and record.stuck:
        label += " (stuck)"
    elif record.success is False and record.state in (TaskState.AWAITING_REPORT, TaskState.DONE):
        label += " (failed)"
    elif record.state is TaskState.AWAITING_REPORT and record.last_report_error is not None:
        label += " (retrying)"
    return label


@dataclass(frozen=True)
class TaskQuery:
    """The operator's filter: free text and, optionally, one counter's category."""

    text: str = ""
    category: TaskCategory | None = None

    @property
    def active(self) -> bool:
        return bool(self.text.strip()) or self.category is not None

    def matches(self, record: TaskRecord) -> bool:
        """Check the category, then look for the text in the id, type, state and error texts, ignoring case."""
        if self.category is not None and not in_category(record, self.category):
            return False
        needle = self.text.strip().casefold()
        if not needle:
            return True
        haystacks = (record.task_id, record.task_type, state_label(record), record.error, record.rejection,
                     record.last_report_error)
        return any(needle in haystack.casefold() for haystack in haystacks if haystack)


STATE_ORDER = {state: index for index, state in enumerate(TaskState)}


@dataclass(frozen=True)
class SortOrder:
    """One of the orders that `s` cycles through."""

    column: str
    """The task table's column key that this order sorts by."""
    label: str
    key: Callable[[TaskRecord], Any]
    """Sort key; ties fall back to the time received, so equal rows stay in arrival order."""


def _duration_key(record: TaskRecord) -> tuple[float, datetime]:
    # Longest first: a negated duration sorts the slowest tasks to the top, unfinished ones last.
    duration = record.duration_seconds
    return (-duration if duration is not None else 0.0, record.received_at)


SORT_ORDERS: tuple[SortOrder, ...] = (
    SortOrder("received", "time received", lambda record: record.received_at),
    SortOrder("id", "task id", lambda record: (record.task_id, record.received_at)),
    SortOrder("type", "type", lambda record: (record.task_type.casefold(), record.received_at)),
    SortOrder("state", "state", lambda record: (STATE_ORDER[record.state], not record.stuck, record.received_at)),
    SortOrder("duration", "duration, longest first", _duration_key),
    SortOrder("reports", "report attempts, most first", lambda r: (-len(r.report_attempts), r.received_at)),
    SortOrder("error", "last error, tasks with errors first", lambda r: (r.last_error is None, r.last_error or "", r.received_at)),
)
