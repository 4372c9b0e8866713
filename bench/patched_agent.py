"""`python -m bench.patched_agent PATCH[,PATCH...]`: `trust-console --headless` with diagnostic patches.

For diagnosis only (`python -m bench.experiments`). Each patch emulates a
change the agent could make, so its effect on throughput can be measured
before anyone changes the code. The patches replace functions at run time in
this process only and touch no file.

- `async-library`: httpcore looks up which async library runs on every
  request and connection. Without the optional `sniffio` package installed,
  each lookup tries the import again and searches sys.path (httpcore 1.0.9).
  The patch returns "asyncio" at once, as an installed sniffio would.
- `ledger-normal`: the ledger commits with `PRAGMA synchronous=NORMAL`
  instead of FULL. In WAL mode a commit then survives a crash of the
  process but not a power cut.
- `ledger-grouped`: the ledger keeps synchronous=FULL but commits the
  tasks of one poll reply in one transaction, and a delivered result's
  attempt and state in one transaction: 3 synced commits per task instead
  of 5, with the same guarantees, because each task is still on disk before
  its handler starts and each result before its first report.
- `ledger-off`: ledger writes do nothing, which bounds what any ledger
  change can gain. It is not a proposal.
- `keep-alive`: the hub client keeps all 16 connections alive instead of 8,
  so a burst of concurrent reports does not open and close connections.
- `bounded-reports`: at most REPORTS_AT_ONCE result requests are in flight;
  the others wait on a semaphore instead of in httpcore's connection pool,
  whose scheduling checks every waiting request against every connection.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx

import console.hub_client
import console.ledger
from console.cli import main as trust_console_main
from console.settings import Settings


def _answer_asyncio() -> None:
    import httpcore._backends.auto
    import httpcore._synchronization

    def current_async_library() -> str:
        return "asyncio"

    httpcore._synchronization.current_async_library = current_async_library
    httpcore._backends.auto.current_async_library = current_async_library  # type: ignore[attr-defined]


def _ledger_normal() -> None:
    original = console.ledger.Ledger.__init__

    def init(self: console.ledger.Ledger, *arguments: object, **options: object) -> None:
        original(self, *arguments, **options)  # type: ignore[arg-type]
        self._db.execute("PRAGMA synchronous=NORMAL")

    console.ledger.Ledger.__init__ = init  # type: ignore[method-assign]


def _ledger_grouped() -> None:
    from console.agent.polling import PollingMixin

    accept = PollingMixin._accept

    def accept_in_one_transaction(self: Any, reply: Any) -> None:
        self.ledger._db.execute("BEGIN")
        try:
            accept(self, reply)
        finally:
            self.ledger._db.execute("COMMIT")

    PollingMixin._accept = accept_in_one_transaction  # type: ignore[method-assign]

    record_attempt = console.ledger.Ledger.record_attempt
    record_delivered = console.ledger.Ledger.record_delivered
    accepted_attempts: dict[str, Any] = {}

    def defer_accepted_attempt(self: console.ledger.Ledger, task_id: str, attempt: Any) -> None:
        if attempt.status_code == 200:
            accepted_attempts[task_id] = attempt
        else:
            record_attempt(self, task_id, attempt)

    def deliver_in_one_transaction(self: console.ledger.Ledger, record: Any, delivered_at: Any) -> None:
        self._db.execute("BEGIN")
        try:
            attempt = accepted_attempts.pop(record.task_id, None)
            if attempt is not None:
                record_attempt(self, record.task_id, attempt)
            record_delivered(self, record, delivered_at)
        finally:
            self._db.execute("COMMIT")

    console.ledger.Ledger.record_attempt = defer_accepted_attempt  # type: ignore[method-assign]
    console.ledger.Ledger.record_delivered = deliver_in_one_transaction  # type: ignore[method-assign]


def _ledger_off() -> None:
    console.ledger.Ledger._write = lambda self, sql, parameters: None  # type: ignore[method-assign]


def _keep_alive() -> None:
    original = console.hub_client.build_http_client

    def build(settings: Settings) -> httpx.AsyncClient:
        template = original(settings)
        return httpx.AsyncClient(
            timeout=template.timeout,
            headers=template.headers,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            trust_env=True,
            follow_redirects=False,
        )

    console.hub_client.build_http_client = build


REPORTS_AT_ONCE = int(os.environ.get("BENCH_REPORTS_AT_ONCE", "2"))


def _bounded_reports() -> None:
    original = console.hub_client.HubClient.send_result
    semaphore: asyncio.Semaphore | None = None

    async def send_result(self: console.hub_client.HubClient, *arguments: Any, **options: Any) -> Any:
        nonlocal semaphore
        if semaphore is None:
            semaphore = asyncio.Semaphore(REPORTS_AT_ONCE)
        async with semaphore:
            return await original(self, *arguments, **options)

    console.hub_client.HubClient.send_result = send_result  # type: ignore[method-assign]


PATCHES = {
    "async-library": _answer_asyncio,
    "ledger-normal": _ledger_normal,
    "ledger-grouped": _ledger_grouped,
    "ledger-off": _ledger_off,
    "keep-alive": _keep_alive,
    "bounded-reports": _bounded_reports,
}


def main() -> int:
    names = [name for name in (sys.argv[1] if len(sys.argv) > 1 else "").split(",") if name]
    unknown = [name for name in names if name not in PATCHES]
    if unknown:
        print(f"unknown patch {unknown[0]!r}; expected some of {', '.join(PATCHES)}", file=sys.stderr)
        return 2
    for name in names:
        PATCHES[name]()
    return trust_console_main(["--headless"])


if __name__ == "__main__":
    sys.exit(main())
