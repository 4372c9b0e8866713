"""Command-line operator actions on a STATE_DIR's ledger: list, retry and re-run tasks.

They work with or without an agent running. A running agent picks a request
up from the ledger within a second. Without one, nothing is sent now, because
the next start delivers every undelivered result anyway.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .ledger import AgentLock, Ledger, LedgerError, iter_lines
from .records import TaskState

REQUEST_WAIT_SECONDS = 5.0

EXIT_OK = 0
EXIT_FAILED = 1


def run_ledger_command(args: argparse.Namespace, state_dir: Path) -> int:
    if not (state_dir / "ledger.sqlite3").exists():
        print(
            f"trust-console: no ledger in STATE_DIR {state_dir.resolve()}; pass --state-dir or set STATE_DIR",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        ledger = Ledger(state_dir)
    except LedgerError as error:
        print(f"trust-console: {error}", file=sys.stderr)
        return EXIT_FAILED

    try:
        if args.command == "tasks":
            return list_tasks(ledger, args.state, args.limit)
        if args.command == "retry":
            action = "retry-all-stuck" if args.all_stuck else "retry"
            return send_request(ledger, state_dir, action, args.task_id)
        return send_request(ledger, state_dir, "rerun", args.task_id)
    finally:
        ledger.close()


def list_tasks(ledger: Ledger, state: str | None, limit: int) -> int:
    if state == "stuck":
        records = [record for record in ledger.records(TaskState.AWAITING_REPORT, limit) if record.stuck]
    elif state == "failed":
        # NOTE: filtered after the query, so fewer than `limit` failed tasks may be listed.
        records = [record for record in ledger.records(limit=limit) if record.success is False]
    else:
        records = ledger.records(TaskState(state.replace("-", " ")) if state else None, limit)
    for line in iter_lines(records):
        print(line)
    return EXIT_OK


def send_request(ledger: Ledger, state_dir: Path, action: str, task_id: str | None) -> int:
    """Leave a request for the running agent and print its outcome once handled."""
    if task_id is not None and ledger.load(task_id) is None:
        print(f"trust-console: task {task_id} is not in the ledger of {state_dir}", file=sys.stderr)
        return EXIT_FAILED
    if not AgentLock.is_held(state_dir):
        print(
            f"no agent is running on {state_dir.resolve()}: nothing was sent. When the agent starts, it sends"
            " every result that is not delivered yet; a rejected result is final."
        )
        return EXIT_FAILED

    request_id = ledger.add_request(action, task_id)
    deadline = time.monotonic() + REQUEST_WAIT_SECONDS
    while time.monotonic() < deadline:
        handled = ledger.request_outcome(request_id)
        if handled is not None:
            applied, outcome = handled
            print(f"{task_id or 'stuck reports'}: {outcome}")
            return EXIT_OK if applied else EXIT_FAILED
        time.sleep(0.1)
    print(f"{action} requested; the agent has not picked it up within {REQUEST_WAIT_SECONDS:g} s", file=sys.stderr)
    return EXIT_FAILED
