"""Helpers for tests that run an agent against the embedded hub."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from console.agent import Agent
from console.hub import EmbeddedHub, TaskStatus
from console.settings import Settings

WAIT_SECONDS = 15.0
"""Upper bound of every wait on a condition; a passing test returns long before it."""

FINISHED = (TaskStatus.COMPLETED, TaskStatus.FAILED)


def fast_settings(api_url: str, api_key: str, state_dir: Path, **overrides: Any) -> Settings:
    """Settings with intervals short enough for tests, pointing at a loopback hub."""
    values: dict[str, Any] = {
        "central_hub_api_url": api_url,
        "trust_api_key": SecretStr(api_key),
        "poll_interval_seconds": 0.1,
        "heartbeat_interval_seconds": 0.1,
        "poll_burst_interval_seconds": 0.02,
        "hub_backoff_max_seconds": 0.5,
        "auth_retry_seconds": 0.3,
        "http_timeout_seconds": 3.0,
        "drain_timeout_seconds": 10.0,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[asyncio.Task[int]]:
    """Run the agent's loops for the body of a `with` block, then stop it."""
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        agent.stop("test finished")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_SECONDS)


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    """Wait for a condition without blocking the loop; fail the test if it never holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


FAST_FLAGS = [
    "--poll-interval-seconds", "0.1",
    "--heartbeat-interval-seconds", "0.1",
    "--poll-burst-interval-seconds", "0.02",
    "--hub-backoff-max-seconds", "0.5",
    "--auth-retry-seconds", "0.3",
]


def start_headless(hub: EmbeddedHub, api_key: str, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    """Start `trust-console --headless` on the hub, with STATE_DIR under `tmp_path`."""
    env = {
        **os.environ,
        "CENTRAL_HUB_API_URL": hub.api_url,
        "TRUST_API_KEY": api_key,
        "STATE_DIR": str(tmp_path / "state"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "console", "--headless", *FAST_FLAGS, *extra],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    """Block until a condition holds, for tests that drive a subprocess; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
