"""The ledger writer: the agent's ledger writes, committed together a few milliseconds apart.

A commit rewrites every page it touched, and a sync to disk waits for the
device, so at hundreds of tasks a second a commit per write would cost more
than the work itself. The writer captures each write's SQL statements and
values when it is made, and commits all that are queued in one transaction:
at once when the agent has been quiet, otherwise at most one commit every
COMMIT_INTERVAL_SECONDS. A commit that contains a result is synced to disk.

Some writes must be committed before the agent goes on: a task's run before
its handler starts, a result before its report. Their callers pass `then`,
which runs on the event loop once the commit is done or its failure logged.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from ..ledger import Ledger, LedgerError, Statement

log = logging.getLogger("console.agent")

COMMIT_INTERVAL_SECONDS = 0.005
"""Minimum time between two commits, which is also the longest a write waits for its commit."""

ErrorHandler = Callable[[str | None, LedgerError], None]
"""Called with the task id of a write that failed, and the error."""


@dataclass
class _Write:
    statements: list[Statement]
    task_id: str | None
    durable: bool
    then: Callable[[], None] | None


class LedgerWriter:
    """Commit the agent's ledger writes in groups, in the order they were made."""

    def __init__(self, ledger: Ledger, on_error: ErrorHandler) -> None:
        self._ledger = ledger
        self._on_error = on_error
        self._queued: list[_Write] = []
        self._commit_scheduled: asyncio.Handle | None = None
        self._last_commit = float("-inf")
        self._closed = False

    def submit(
        self,
        write: Callable[..., None],
        *arguments: object,
        task_id: str | None = None,
        durable: bool = False,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue a write method of the ledger; its values are read now, and `durable` syncs its commit to disk."""
        if self._closed:
            self._on_error(task_id, LedgerError(f"ledger {self._ledger.path} is closed; write not made"))
            if then is not None:
                then()
            return
        try:
            statements = self._ledger.statements(write, *arguments)
        except LedgerError as error:
            self._on_error(task_id, error)
            return
        self._queued.append(_Write(statements, task_id, durable, then))
        if self._commit_scheduled is not None:
            return

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # No event loop to group writes on.
            return
        wait = self._last_commit + COMMIT_INTERVAL_SECONDS - loop.time()
        if wait > 0:
            self._commit_scheduled = loop.call_later(wait, self.flush)
        else:
            # The writes made in this turn of the event loop still join the commit.
            self._commit_scheduled = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit every queued write now, synced to disk if any of them needs it."""
        if self._commit_scheduled is not None:
            self._commit_scheduled.cancel()
            self._commit_scheduled = None
        queued, self._queued = self._queued, []
        if not queued:
            return
        try:
            self._last_commit = asyncio.get_running_loop().time()
        except RuntimeError:
            pass

        statements = [statement for write in queued for statement in write.statements]
        durable = any(write.durable for write in queued)
        if statements:
            try:
                self._ledger.commit(statements, durable)
            except (LedgerError, sqlite3.Error):
                # One failing write must not take the rest with it. Each is tried alone, so each
                # failure is reported with its own task.
                for write in queued:
                    self._commit_alone(write)

        for write in queued:
            if write.then is None:
                continue
            try:
                write.then()
            except Exception:
                log.exception("a step after a ledger commit failed for task %s", write.task_id or "-")

    def close(self) -> None:
        """Commit what is queued; a later write is logged as not made."""
        if not self._closed:
            self.flush()
            self._closed = True

    def _commit_alone(self, write: _Write) -> None:
        if not write.statements:
            return
        try:
            self._ledger.commit(write.statements, write.durable)
        except LedgerError as error:
            self._on_error(write.task_id, error)
        except sqlite3.Error as error:
            self._on_error(write.task_id, LedgerError(f"ledger {self._ledger.path} write failed ({error}); check free disk space"))
