"""Older tasks paged in from the ledger on request, so the console holds only a bounded number of them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

from console.ledger import Ledger
from console.records import TaskRecord

PAGE_SIZE = 500
"""Older tasks loaded per request."""

MAX_HISTORY_ROWS = 5000
"""Older tasks the console keeps at most; past this, `trust-console tasks` lists the rest."""

MAX_KEPT_RESULT_CHARS = 2000
"""Result characters kept of each older task: as many as the detail view shows."""


def read_older_page(
    state_dir: Path, before: datetime | None, page_size: int = PAGE_SIZE
) -> tuple[list[TaskRecord], bool]:
    """Read up to `page_size` tasks received before `before`, newest first; also return whether more remain.

    Runs in a worker thread, so it opens a connection of its own: the
    agent's connection belongs to the event loop's thread.
    """
    ledger = Ledger(state_dir)
    try:
        older = ledger.records(limit=page_size + 1, before=before)
    finally:
        ledger.close()
    page = [_trim(record) for record in older[:page_size]]
    return page, len(older) > page_size


def _trim(record: TaskRecord) -> TaskRecord:
    if record.result is None or len(record.result) <= MAX_KEPT_RESULT_CHARS:
        return record
    return dataclasses.replace(record, result=record.result[:MAX_KEPT_RESULT_CHARS])


class History:
    """The older tasks loaded so far, oldest last in load order, and whether the ledger has more."""

    def __init__(self) -> None:
        self.records: dict[str, TaskRecord] = {}
        self.exhausted = False
        self.loading = False

    @property
    def full(self) -> bool:
        return len(self.records) >= MAX_HISTORY_ROWS

    @property
    def can_load(self) -> bool:
        return not (self.exhausted or self.full or self.loading)

    def add_page(self, page: list[TaskRecord], more: bool) -> int:
        """Keep the page's tasks; return how many were new.

        A task the agent still keeps in memory may be kept here too, because
        the table shows only the newest of those; the table then shows the
        agent's record, which is the fresher one.
        """
        added = 0
        for record in page:
            if len(self.records) >= MAX_HISTORY_ROWS:
                break
            if record.task_id in self.records:
                continue
            self.records[record.task_id] = record
            added += 1
        self.exhausted = not more
        return added
