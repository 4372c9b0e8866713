"""The hub is untrusted input, and the API key never leaves the agent."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from support import running, start_headless, wait_for, wait_until

from console.agent import Agent
from console.handlers import HandlerContext, default_registry
from console.hub import EmbeddedHub, MalformedKind, Task, TaskStatus
from console.records import TaskState
from console.text import printable

HOSTILE_TYPE = "[bold red]boom[/]\x1b[2J\x1b[31mred\r\nFAKE LINE"


def plant_task(hub: EmbeddedHub, task_id: str, task_type: str = "echo", payload: str = "{}") -> None:
    """Put a task with an arbitrary id into the hub's store, as a hostile hub could hand out."""
    task = Task(
        id=task_id,
        trust_id=hub.trust.trust_id,
        task_type=task_type,
        payload=payload,
        created_at=datetime.now(timezone.utc),
    )
    with hub.store._lock:
        hub.store._tasks[task_id] = task


def test_printable_escapes_controls() -> None:
    assert printable("a\x1b[31mb\r\nc") == "a\\x1b[31mb\\x0d\\nc"
    assert printable("[bold]x[/]") == "[bold]x[/]"
    assert printable(None) == ""


async def test_path_traversal_id_never_used(embedded_hub: EmbeddedHub, make_settings) -> None:
    for task_id in ("../../admin/faults", "0b7e4d38-5a34-4c8e-8f3e-2d8b1a6f9c01?x=1", "a/b"):
        plant_task(embedded_hub, task_id)
    good = embedded_hub.store.enqueue("echo", {}).id
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.task(good).status is TaskStatus.COMPLETED)

    paths = [request.path for request in embedded_hub.store.records.requests()]
    assert all(path.startswith("/api/") for path in paths)
    assert {record.task_id for record in embedded_hub.store.records.results()} == {good}
    assert set(agent.tasks) == {good}


async def test_oversized_body_refused(embedded_hub: EmbeddedHub, make_settings) -> None:
    embedded_hub.faults.malform_next(MalformedKind.OVERSIZED, size_bytes=50_000_000)
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.records.count_requests("pending") >= 2)
        task_id = embedded_hub.store.enqueue("echo", {}).id
        await wait_until(lambda: embedded_hub.store.task(task_id).status is TaskStatus.COMPLETED)


async def test_disabled_type_never_reaches_handler(embedded_hub: EmbeddedHub, make_settings) -> None:
    calls: Counter[str] = Counter()

    async def counted(payload: Any, context: HandlerContext) -> Any:
        calls[context.task_type] += 1
        return None

    registry = default_registry()
    registry.register("export", counted)
    task_id = embedded_hub.store.enqueue("export", {}).id
    agent = Agent(make_settings(enabled_task_types="echo"), registry=registry)

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.task(task_id).status is TaskStatus.FAILED)

    assert calls["export"] == 0
    assert "ENABLED_TASK_TYPES" in json.loads(embedded_hub.store.task(task_id).result)["error"]


async def test_result_cut_to_max_result_chars(embedded_hub: EmbeddedHub, make_settings) -> None:
    task_id = embedded_hub.store.enqueue("echo", {"blob": "x" * 5000}).id
    agent = Agent(make_settings(max_result_chars=1000))

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.task(task_id).status is TaskStatus.COMPLETED)
        await wait_until(lambda: agent.tasks[task_id].state is TaskState.DONE)
        stored = agent.ledger.load(task_id)[0].result

    sent = embedded_hub.store.task(task_id).result
    assert len(sent) <= 1000
    assert "truncated by trust-console" in sent
    assert stored == sent


def test_hostile_task_type_logged_escaped(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    task_id = embedded_hub.store.enqueue(HOSTILE_TYPE, {}).id
    process = start_headless(embedded_hub, api_key, tmp_path)
    try:
        wait_for(lambda: embedded_hub.store.task(task_id).status is TaskStatus.FAILED)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)

    assert "\x1b" not in stderr
    assert "\r" not in stderr
    assert not any(line.startswith("FAKE LINE") for line in stderr.splitlines())
    assert "[bold red]boom[/]\\x1b[2J" in stderr


def test_api_key_in_no_output(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 500, count=2)
    embedded_hub.faults.fail_next("heartbeat", 401, count=1)
    ids = [store.enqueue(kind, payload).id for kind, payload in (("echo", {}), ("fail", {"message": "m"}))]
    process = start_headless(embedded_hub, api_key, tmp_path)
    try:
        wait_for(lambda: all(store.task(task_id).status in (TaskStatus.COMPLETED, TaskStatus.FAILED) for task_id in ids))
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    help_text = subprocess.run(
        [sys.executable, "-m", "console", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    listing = subprocess.run(
        [sys.executable, "-m", "console", "tasks", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert process.returncode == 0
    assert "reported" in stderr
    for output in (stdout, stderr, help_text, listing.stdout, listing.stderr):
        assert api_key not in output
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert api_key.encode() not in path.read_bytes(), path


async def test_zero_retry_after_is_no_tight_loop(embedded_hub: EmbeddedHub, make_settings) -> None:
    embedded_hub.faults.fail_next("result", 429, count=1000, retry_after=0)
    task_id = embedded_hub.store.enqueue("echo", {}).id
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.records.count_requests("result") >= 1)
        await asyncio.sleep(1.5)
        posts = embedded_hub.store.records.count_requests("result")

    # Backoff from 1 s: about 2 attempts in 1.5 s. A Retry-After of 0 taken literally makes thousands.
    assert posts <= 5
    assert embedded_hub.store.task(task_id).status is TaskStatus.IN_PROGRESS


async def test_unusable_poll_reply_is_no_tight_loop(embedded_hub: EmbeddedHub, make_settings) -> None:
    embedded_hub.faults.malform_next(MalformedKind.NOT_JSON, count=10_000)
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.records.count_requests("pending") >= 1)
        await asyncio.sleep(1.0)
        polls = embedded_hub.store.records.count_requests("pending")

    # One poll per 0.1 s interval: about 10. Without the wait, thousands.
    assert polls <= 30


async def test_deeply_nested_payload_drops_nothing(embedded_hub: EmbeddedHub, make_settings) -> None:
    nested = embedded_hub.store.enqueue("echo", "[" * 5000 + "]" * 5000).id
    after = embedded_hub.store.enqueue("echo", {"n": 1}).id
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: embedded_hub.store.task(after).status is TaskStatus.COMPLETED)
        await wait_until(lambda: embedded_hub.store.task(nested).status is TaskStatus.FAILED)

    assert "nested too deeply" in json.loads(embedded_hub.store.task(nested).result)["error"]
