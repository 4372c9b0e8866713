"""The durable ledger: every task the hub handed out, kept in SQLite until the hub has its result.

A result is committed before its first report attempt, so a crash between
the handler and the hub loses nothing: the next start reads the ledger and
delivers it. One agent at a time owns a STATE_DIR, enforced by an exclusive
lock on `agent.lock`. Command-line tools open the same ledger to read it and
to leave operator requests that the running agent picks up.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .records import ReportAttempt, TaskRecord, TaskState
from .text import printable

log = logging.getLogger(__name__)

Statement = tuple[str, tuple[object, ...]]
"""An SQL statement and its values."""

LEDGER_FILE = "ledger.sqlite3"
LOCK_FILE = "agent.lock"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    task_type TEXT NOT NULL,
    payload TEXT,
    payload_summary TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    success INTEGER,
    result TEXT,
    error TEXT,
    rejection TEXT,
    delivered_at TEXT,
    stuck INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state);
CREATE INDEX IF NOT EXISTS tasks_by_received ON tasks (received_at);
CREATE TABLE IF NOT EXISTS report_attempts (
    task_id TEXT NOT NULL,
    at TEXT NOT NULL,
    status_code INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_task ON report_attempts (task_id);
CREATE TABLE IF NOT EXISTS task_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS task_inserted AFTER INSERT ON tasks
    BEGIN INSERT INTO task_changes (task_id) VALUES (NEW.task_id); END;
CREATE TRIGGER IF NOT EXISTS task_updated AFTER UPDATE ON tasks
    BEGIN INSERT INTO task_changes (task_id) VALUES (NEW.task_id); END;
CREATE TRIGGER IF NOT EXISTS attempt_inserted AFTER INSERT ON report_attempts
    BEGIN INSERT INTO task_changes (task_id) VALUES (NEW.task_id); END;
CREATE TABLE IF NOT EXISTS agent_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operator_requests (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    task_id TEXT,
    requested_at TEXT NOT NULL,
    handled_at TEXT,
    applied INTEGER,
    outcome TEXT
);
"""

CHANGES_KEPT = 20_000
"""Change entries kept for attached consoles; older ones are pruned by the agent."""

ACTIVE_STATES = (TaskState.QUEUED, TaskState.RUNNING, TaskState.AWAITING_REPORT)


class LedgerError(Exception):
    """The ledger cannot be used; the message names the file and what to do."""


class StateDirLocked(LedgerError):
    """Another agent already runs on this STATE_DIR."""


class StateDirUnusable(LedgerError):
    """STATE_DIR is not a writable directory: a configuration error."""


@dataclass(frozen=True)
class OperatorRequest:
    id: int
    action: str
    task_id: str | None
    requested_at: datetime


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def prepare_state_dir(state_dir: Path) -> Path:
    """Create STATE_DIR readable by its owner only (0700), or check an existing one is a directory."""
    if state_dir.exists() and not state_dir.is_dir():
        raise StateDirUnusable(f"STATE_DIR {state_dir} is not a directory; point STATE_DIR at a directory")
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StateDirUnusable(
            f"STATE_DIR {state_dir} cannot be created ({error.strerror}); choose a writable path"
        ) from None
    if not os.access(state_dir, os.R_OK | os.W_OK | os.X_OK):
        raise StateDirUnusable(f"STATE_DIR {state_dir} is not writable by this user; fix its owner or choose another")
    return state_dir


class AgentLock:
    """An exclusive lock on STATE_DIR/agent.lock, held while an agent runs there."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StateDirUnusable(f"lock file {self.path} cannot be opened ({error.strerror}); check STATE_DIR") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateDirLocked(
                f"another trust-console agent (pid {holder}) is running on STATE_DIR {self.path.parent};"
                " stop it first, or give this agent its own STATE_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def is_held(state_dir: Path) -> bool:
        """Check whether an agent currently holds the lock on `state_dir`."""
        path = state_dir / LOCK_FILE
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


class Ledger:
    """Task records in STATE_DIR/ledger.sqlite3 (WAL mode, file mode 0600)."""

    def __init__(self, state_dir: Path) -> None:
        self._captured: list[Statement] | None = None
        self.path = prepare_state_dir(state_dir) / LEDGER_FILE
        try:
            if not self.path.exists():
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
        except OSError as error:
            raise LedgerError(f"ledger {self.path} cannot be created ({error.strerror}); check STATE_DIR") from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL survives a crashed or killed process; record_finished syncs to disk.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise LedgerError(
                f"ledger {self.path} cannot be opened ({error}): check free disk space and permissions. It keeps"
                " undelivered results: if it is damaged, move it aside rather than delete it"
            ) from None

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, parameters: tuple[object, ...]) -> None:
        if self._captured is not None:
            self._captured.append((sql, parameters))
            return
        self._run(sql, parameters)

    def _run(self, sql: str, parameters: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, parameters)
        except sqlite3.OperationalError as error:
            raise LedgerError(f"ledger {self.path} write failed ({error}); check free disk space") from error

    # Task life cycle.

    def record_received(self, record: TaskRecord, payload: str | None) -> None:
        self._write(
            "INSERT OR IGNORE INTO tasks (task_id, task_type, payload, payload_summary, state, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (record.task_id, record.task_type, payload, record.payload_summary, record.state.value,
             _text(record.received_at)),
        )

    def record_run(self, record: TaskRecord) -> None:
        """Count a run of the task's handler; committed before the handler may start."""
        self._write("UPDATE tasks SET runs = runs + 1 WHERE task_id = ?", (record.task_id,))

    def record_started(self, record: TaskRecord) -> None:
        self._write(
            "UPDATE tasks SET state = ?, started_at = ? WHERE task_id = ?",
            (record.state.value, _text(record.started_at), record.task_id),
        )

    def record_finished(self, record: TaskRecord) -> None:
        """Commit the handler's result and sync it to disk before the first report attempt.

        This write is synced with synchronous=FULL, which also syncs every earlier
        commit; the others (received, attempts, delivered) survive a killed process
        but may be lost to a power cut, after which a result is at worst sent again.
        Inside a transaction the write joins it, and is synced as that transaction is.
        """
        if self._db.in_transaction:
            self.write_finished(record)
            return
        self.commit(self.statements(self.write_finished, record), durable=True)

    def write_finished(self, record: TaskRecord) -> None:
        """Write the handler's result without a sync of its own; see record_finished."""
        self._write(
            "UPDATE tasks SET state = ?, started_at = ?, finished_at = ?, success = ?, result = ?, error = ?,"
            " rejection = NULL, stuck = 0 WHERE task_id = ?",
            (record.state.value, _text(record.started_at), _text(record.finished_at), int(bool(record.success)),
             record.result, record.error, record.task_id),
        )

    # Grouped writes: the agent's ledger writer captures writes here and commits several at once.

    def statements(self, write: Callable[..., None], *arguments: object) -> list[Statement]:
        """Return the SQL statements a write method would run, with their values as of now, without running them."""
        self._captured = []
        try:
            write(*arguments)
            return self._captured
        finally:
            self._captured = None

    def commit(self, statements: list[Statement], durable: bool) -> None:
        """Run statements in one transaction: one commit, and with `durable` one sync to disk.

        Raises LedgerError and leaves the ledger as it was if any statement fails.
        """
        # SQLite fixes a transaction's safety level when it begins, so the level is set before BEGIN.
        if durable:
            self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._run("BEGIN IMMEDIATE", ())
            try:
                for sql, parameters in statements:
                    self._run(sql, parameters)
                self._run("COMMIT", ())
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        finally:
            if durable:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def record_attempt(self, task_id: str, attempt: ReportAttempt) -> None:
        self._write(
            "INSERT INTO report_attempts (task_id, at, status_code, error) VALUES (?, ?, ?, ?)",
            (task_id, _text(attempt.at), attempt.status_code, attempt.error),
        )

    def record_delivered(self, record: TaskRecord, delivered_at: datetime) -> None:
        """Mark the result delivered and drop the payload, which is no longer needed."""
        self._write(
            "UPDATE tasks SET state = ?, delivered_at = ?, payload = NULL, stuck = 0 WHERE task_id = ?",
            (TaskState.DONE.value, _text(delivered_at), record.task_id),
        )

    def record_rejected(self, record: TaskRecord) -> None:
        self._write(
            "UPDATE tasks SET state = ?, rejection = ?, payload = NULL, stuck = 0 WHERE task_id = ?",
            (TaskState.REJECTED.value, record.rejection, record.task_id),
        )

    def record_state(self, record: TaskRecord) -> None:
        self._write(
            "UPDATE tasks SET state = ?, stuck = ? WHERE task_id = ?",
            (record.state.value, int(record.stuck), record.task_id),
        )

    # Reading.

    def load(self, task_id: str) -> tuple[TaskRecord, str | None, int] | None:
        """Return a task's record, its payload and how often a handler started on it."""
        row = self._db.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        return self._from_row(row)

    def active(self) -> list[tuple[TaskRecord, str | None, int]]:
        """Return every task not yet delivered or rejected, oldest first."""
        placeholders = ", ".join("?" for _ in ACTIVE_STATES)
        rows = self._db.execute(
            f"SELECT * FROM tasks WHERE state IN ({placeholders}) ORDER BY received_at",
            tuple(state.value for state in ACTIVE_STATES),
        ).fetchall()
        return [self._from_row(row) for row in rows]

    def records(
        self, state: TaskState | None = None, limit: int = 1000, before: datetime | None = None
    ) -> list[TaskRecord]:
        """Return task records, newest first, optionally of one state or received before a time."""
        conditions, parameters = [], []
        if state is not None:
            conditions.append("state = ?")
            parameters.append(state.value)
        if before is not None:
            conditions.append("received_at < ?")
            parameters.append(_text(before))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.execute(
            f"SELECT * FROM tasks{where} ORDER BY received_at DESC LIMIT ?", (*parameters, limit)
        ).fetchall()
        return [self._from_row(row)[0] for row in rows]

    def _from_row(self, row: tuple[object, ...]) -> tuple[TaskRecord, str | None, int]:
        (task_id, task_type, payload, summary, state, received_at, started_at, finished_at, runs, success, result,
         error, rejection, _delivered_at, stuck) = row
        attempts = [
            ReportAttempt(datetime.fromisoformat(at), status_code, attempt_error)
            for at, status_code, attempt_error in self._db.execute(
                "SELECT at, status_code, error FROM report_attempts WHERE task_id = ? ORDER BY rowid", (task_id,)
            )
        ]
        record = TaskRecord(
            task_id=str(task_id),
            task_type=str(task_type),
            payload_summary=str(summary),
            received_at=datetime.fromisoformat(str(received_at)),
            state=TaskState(state),
            started_at=_time(started_at),  # type: ignore[arg-type]
            finished_at=_time(finished_at),  # type: ignore[arg-type]
            success=None if success is None else bool(success),
            result=result,  # type: ignore[arg-type]
            error=error,  # type: ignore[arg-type]
            report_attempts=attempts,
            rejection=rejection,  # type: ignore[arg-type]
            stuck=bool(stuck),
        )
        return record, payload, int(runs)  # type: ignore[arg-type, call-overload]

    # Retention.

    def prune(self, retention_days: float, now: datetime | None = None) -> int:
        """Delete delivered and rejected tasks received before the retention period; return how many."""
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=retention_days)
        finished = (TaskState.DONE.value, TaskState.REJECTED.value)
        with self._transaction():
            self._db.execute(
                "DELETE FROM report_attempts WHERE task_id IN"
                " (SELECT task_id FROM tasks WHERE state IN (?, ?) AND received_at < ?)",
                (*finished, _text(cutoff)),
            )
            deleted = self._db.execute(
                "DELETE FROM tasks WHERE state IN (?, ?) AND received_at < ?", (*finished, _text(cutoff))
            ).rowcount
        return deleted

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # Changes and status, for a console attached from another process.

    def last_change(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM task_changes").fetchone()
        return int(row[0])

    def changes_since(self, seq: int) -> tuple[int, set[str]]:
        """Return the newest change number and the ids of tasks changed after `seq`."""
        rows = self._db.execute("SELECT seq, task_id FROM task_changes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        if not rows:
            return seq, set()
        return int(rows[-1][0]), {str(task_id) for _, task_id in rows}

    def prune_changes(self, keep: int = CHANGES_KEPT) -> None:
        """Forget all but the newest `keep` change entries; an attached console then reloads."""
        self._write("DELETE FROM task_changes WHERE seq <= (SELECT MAX(seq) FROM task_changes) - ?", (keep,))

    def write_status(self, status: dict[str, object]) -> None:
        """Store the running agent's status (identity, connectivity, pause, heartbeat) for attached consoles."""
        self._write(
            "INSERT INTO agent_status (id, status, updated_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
            (json.dumps(status), _text(datetime.now(timezone.utc))),
        )

    def read_status(self) -> tuple[dict[str, object], datetime] | None:
        row = self._db.execute("SELECT status, updated_at FROM agent_status WHERE id = 1").fetchone()
        if row is None:
            return None
        return json.loads(row[0]), datetime.fromisoformat(row[1])

    # Operator requests from the command line or another console.

    def add_request(self, action: str, task_id: str | None = None) -> int:
        cursor = self._db.execute(
            "INSERT INTO operator_requests (action, task_id, requested_at) VALUES (?, ?, ?)",
            (action, task_id, _text(datetime.now(timezone.utc))),
        )
        return int(cursor.lastrowid or 0)

    def pending_requests(self) -> list[OperatorRequest]:
        rows = self._db.execute(
            "SELECT id, action, task_id, requested_at FROM operator_requests WHERE handled_at IS NULL ORDER BY id"
        ).fetchall()
        return [OperatorRequest(row[0], row[1], row[2], datetime.fromisoformat(row[3])) for row in rows]

    def finish_request(self, request_id: int, applied: bool, outcome: str) -> None:
        self._write(
            "UPDATE operator_requests SET handled_at = ?, applied = ?, outcome = ? WHERE id = ?",
            (_text(datetime.now(timezone.utc)), int(applied), outcome, request_id),
        )

    def request_outcome(self, request_id: int) -> tuple[bool, str] | None:
        """Return whether the agent applied a request and what happened, or None while it is pending."""
        row = self._db.execute(
            "SELECT applied, outcome FROM operator_requests WHERE id = ? AND handled_at IS NOT NULL", (request_id,)
        ).fetchone()
        return None if row is None else (bool(row[0]), row[1])


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def iter_lines(records: list[TaskRecord]) -> Iterator[str]:
    """Format records as the columns of `trust-console tasks`, with hub text escaped."""
    yield f"{'TASK ID':36}  {'TYPE':20}  {'STATE':24}  {'ATTEMPTS':8}  LAST ERROR"
    for record in records:
        state = str(record.state)
        if record.success is False and record.state is TaskState.DONE:
            state += " (failed)"
        if record.stuck:
            state += " (stuck)"
        task_type = _cut(printable(record.task_type), 20)
        error = _cut(printable(record.last_error), 80)
        yield f"{printable(record.task_id):36}  {task_type:20}  {state:24}  {len(record.report_attempts):8}  {error}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
