"""The two loops trust-console is compared with, run as `python -m bench.loops bare|classic`.

- `bare`: poll, then post each result at once, with no handler, no ledger and
  no heartbeat. It is the practical limit of one client against this hub.
- `classic`: the sequential design of a simple trust poller. Each cycle sends
  a heartbeat, polls, runs each task's handler in turn and reports its result,
  then sleeps the poll interval.

Both read CENTRAL_HUB_API_URL and TRUST_API_KEY from the environment, use the
agent's own HTTP client settings (`build_http_client`) and the agent's handler
code, and stop by themselves: at `--max-seconds`, after `--max-requests`
requests, or once a poll returns no task (`--until-empty`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx
from pydantic import SecretStr

from console.handlers import HandlerContext, default_registry, run_handler
from console.hub_client import build_http_client
from console.settings import Settings


class RequestBudgetSpent(Exception):
    """The loop sent its maximum number of requests."""


class Loop:
    """Shared state of both loops: the HTTP client, the request budget and the counts."""

    def __init__(self, http: httpx.AsyncClient, api_url: str, max_requests: int) -> None:
        self.http = http
        self.api_url = api_url
        self.max_requests = max_requests
        self.requests = 0
        self.results = 0
        self.failures = 0

    async def send(self, method: str, path: str, body: dict[str, object] | None = None) -> httpx.Response:
        if self.requests >= self.max_requests:
            raise RequestBudgetSpent(f"sent {self.requests} requests, the maximum")
        self.requests += 1
        response = await self.http.request(method, f"{self.api_url}{path}", json=body)
        if response.status_code != 200:
            self.failures += 1
        return response

    async def poll(self) -> list[dict[str, str]]:
        response = await self.send("GET", "/tasks/pending")
        if response.status_code != 200:
            return []
        return list(response.json()["tasks"])

    async def report(self, task_id: str, success: bool, result: str | None) -> None:
        response = await self.send("POST", f"/tasks/{task_id}/result", {"success": success, "result": result})
        if response.status_code == 200:
            self.results += 1


async def run_bare(loop: Loop, until_empty: bool) -> None:
    while True:
        tasks = await loop.poll()
        if not tasks and until_empty:
            return
        for task in tasks:
            # The echo handler's result is the payload itself, so the body matches the agent's.
            await loop.report(task["id"], True, task["payload"])


async def run_classic(loop: Loop, settings: Settings, until_empty: bool) -> None:
    registry = default_registry()
    while True:
        await loop.send("POST", "/trust/heartbeat")
        tasks = await loop.poll()
        if not tasks and until_empty:
            return
        for task in tasks:
            outcome = await run_handler(
                registry,
                settings.enabled_task_types,
                HandlerContext(task["id"], task["task_type"]),
                task["payload"],
                settings.handler_timeout_seconds,
                None,
                settings.max_result_chars,
            )
            await loop.report(task["id"], outcome.success, outcome.result)
        await asyncio.sleep(settings.poll_interval_seconds)


async def run(arguments: argparse.Namespace) -> dict[str, object]:
    settings = Settings(
        _env_file=None,
        central_hub_api_url=os.environ["CENTRAL_HUB_API_URL"],
        trust_api_key=SecretStr(os.environ["TRUST_API_KEY"]),
        poll_interval_seconds=arguments.poll_interval,
    )
    started = time.monotonic()
    stopped_by = "until-empty"
    async with build_http_client(settings) as http:
        loop = Loop(http, settings.central_hub_api_url, arguments.max_requests)
        try:
            async with asyncio.timeout(arguments.max_seconds):
                if arguments.design == "bare":
                    await run_bare(loop, arguments.until_empty)
                else:
                    await run_classic(loop, settings, arguments.until_empty)
        except TimeoutError:
            stopped_by = "max-seconds"
        except RequestBudgetSpent:
            stopped_by = "max-requests"
    return {
        "design": arguments.design,
        "stopped_by": stopped_by,
        "seconds": round(time.monotonic() - started, 3),
        "requests": loop.requests,
        "results": loop.results,
        "failed_requests": loop.failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loops", description=__doc__.splitlines()[0])
    parser.add_argument("design", choices=["bare", "classic"])
    parser.add_argument("--poll-interval", type=float, default=5.0, help="Seconds the classic loop sleeps after each cycle.")
    parser.add_argument("--max-seconds", type=float, required=True, help="Stop after this many seconds.")
    parser.add_argument("--max-requests", type=int, required=True, help="Stop after sending this many requests.")
    parser.add_argument("--until-empty", action="store_true", help="Stop once a poll returns no task.")
    summary = asyncio.run(run(parser.parse_args()))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
