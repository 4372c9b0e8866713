"""The ledger writer: grouped commits, syncs for results, order, and failures that lose nothing silently."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support import wait_until

from console.agent import ledger_writer
from console.agent.ledger_writer import LedgerWriter
from console.ledger import Ledger, LedgerError, Statement
from console.records import TaskRecord, TaskState

TASK_IDS = [f"00000000-0000-4000-8000-00000000000{index}" for index in range(4)]


class CountingLedger(Ledger):
    """A ledger that records each commit: how many statements, and whether it was synced."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.commits: list[tuple[int, bool]] = []

    def commit(self, statements: list[Statement], durable: bool) -> None:
        self.commits.append((len(statements), durable))
        super().commit(statements, durable)


def record(index: int) -> TaskRecord:
    return TaskRecord(TASK_IDS[index], "echo", "JSON object", datetime.now(timezone.utc))


def stored_state(state_dir: Path, index: int) -> str | None:
    """Read a task's state through a connection of its own, as a restarted agent would."""
    reader = Ledger(state_dir)
    try:
        stored = reader.load(TASK_IDS[index])
        return None if stored is None else stored[0].state.value
    finally:
        reader.close()


@pytest.fixture
def ledger(tmp_path: Path) -> CountingLedger:
    opened = CountingLedger(tmp_path)
    yield opened
    opened.close()


def no_error(task_id: str | None, error: LedgerError) -> None:
    raise AssertionError(f"unexpected ledger error for {task_id}: {error}")


async def test_writes_of_one_turn_share_commit(ledger: CountingLedger, tmp_path: Path) -> None:
    writer = LedgerWriter(ledger, no_error)
    committed: list[str] = []

    for index in range(3):
        writer.submit(ledger.record_received, record(index), "{}", task_id=TASK_IDS[index])
    writer.submit(ledger.record_run, record(0), task_id=TASK_IDS[0], then=lambda: committed.append("run"))
    assert ledger.commits == []

    await wait_until(lambda: committed == ["run"])
    assert ledger.commits == [(4, False)]
    assert stored_state(tmp_path, 2) == TaskState.QUEUED.value


async def test_result_synced_before_then(ledger: CountingLedger, tmp_path: Path) -> None:
    writer = LedgerWriter(ledger, no_error)
    task = record(0)
    writer.submit(ledger.record_received, task, "{}", task_id=task.task_id)
    task.state = TaskState.AWAITING_REPORT
    seen: list[str | None] = []

    writer.submit(
        ledger.write_finished, task, task_id=task.task_id, durable=True,
        then=lambda: seen.append(stored_state(tmp_path, 0)),
    )

    await wait_until(lambda: bool(seen))
    assert seen == [TaskState.AWAITING_REPORT.value]
    assert ledger.commits == [(2, True)]


async def test_busy_writer_waits_for_interval(
    ledger: CountingLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_writer, "COMMIT_INTERVAL_SECONDS", 3600.0)
    writer = LedgerWriter(ledger, no_error)
    first_done = asyncio.Event()
    writer.submit(ledger.record_received, record(0), "{}", task_id=TASK_IDS[0], then=first_done.set)
    await asyncio.wait_for(first_done.wait(), 5)

    # Within the interval of the last commit, the next write waits for the timer (an hour here).
    writer.submit(ledger.record_received, record(1), "{}", task_id=TASK_IDS[1])
    await asyncio.sleep(0.05)
    assert stored_state(tmp_path, 1) is None

    writer.flush()
    assert stored_state(tmp_path, 1) == TaskState.QUEUED.value
    assert len(ledger.commits) == 2


async def test_failing_write_spares_the_others(ledger: CountingLedger, tmp_path: Path) -> None:
    errors: list[tuple[str | None, str]] = []
    writer = LedgerWriter(ledger, lambda task_id, error: errors.append((task_id, str(error))))
    after: list[str] = []

    def broken_write(task: TaskRecord) -> None:
        ledger._write("UPDATE no_such_table SET state = ? WHERE task_id = ?", ("done", task.task_id))

    writer.submit(ledger.record_received, record(0), "{}", task_id=TASK_IDS[0])
    writer.submit(broken_write, record(1), task_id=TASK_IDS[1], then=lambda: after.append("broken"))
    writer.submit(ledger.record_received, record(2), "{}", task_id=TASK_IDS[2], then=lambda: after.append("kept"))

    await wait_until(lambda: len(after) == 2)
    assert after == ["broken", "kept"]
    assert [task_id for task_id, _ in errors] == [TASK_IDS[1]]
    assert "no_such_table" in errors[0][1]
    assert stored_state(tmp_path, 0) == TaskState.QUEUED.value
    assert stored_state(tmp_path, 2) == TaskState.QUEUED.value


async def test_close_commits_queued_writes(ledger: CountingLedger, tmp_path: Path) -> None:
    errors: list[str | None] = []
    writer = LedgerWriter(ledger, lambda task_id, error: errors.append(task_id))
    writer.submit(ledger.record_received, record(0), "{}", task_id=TASK_IDS[0])

    writer.close()
    assert stored_state(tmp_path, 0) == TaskState.QUEUED.value

    after: list[str] = []
    writer.submit(ledger.record_received, record(1), "{}", task_id=TASK_IDS[1], then=lambda: after.append("done"))
    assert errors == [TASK_IDS[1]]
    assert after == ["done"]
    assert stored_state(tmp_path, 1) is None
