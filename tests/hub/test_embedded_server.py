"""EmbeddedHub life cycle: start, stop, restart on the same port, serve() and the hub command."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from console.hub import DEFAULT_API_KEY_HEADER, DEMO_TRUST_ID, EmbeddedHub, RateLimits, TaskStatus

KEY = {DEFAULT_API_KEY_HEADER: "k"}
PROCESS_TIMEOUT_SECONDS = 10.0


def test_restart_same_port_keeps_store() -> None:
    hub = EmbeddedHub(api_key="k", rate_limits=RateLimits.off()).start()
    try:
        port = hub.port
        task = hub.store.enqueue("echo", "{}")
        with httpx.Client(base_url=hub.api_url + "/", headers=KEY, timeout=5.0) as http:
            handed = http.get("tasks/pending").json()["tasks"]
            hub.stop()
            with pytest.raises(httpx.ConnectError):
                http.get("tasks/pending")

            hub.start()
            reply = http.post(f"tasks/{task.id}/result", json={"success": True, "result": None})
    finally:
        hub.stop()

    assert [item["id"] for item in handed] == [task.id]
    assert hub.port == port
    assert reply.status_code == 200
    assert hub.store.task(task.id).status is TaskStatus.COMPLETED
    assert hub.store.records.count_requests("pending", 200) == 1
    assert hub.store.records.count_requests("result", 200) == 1


def test_fixed_port_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with EmbeddedHub(port=free_port, api_key="k") as hub:
        reply = httpx.get(f"http://127.0.0.1:{free_port}/api/tasks/pending", headers=KEY, timeout=5.0)

    assert hub.api_url == f"http://127.0.0.1:{free_port}/api"
    assert hub.admin_url == f"http://127.0.0.1:{free_port}/admin"
    assert reply.status_code == 200


def test_busy_port_raises() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        hub = EmbeddedHub(port=holder.getsockname()[1], api_key="k")

        with pytest.raises(OSError):
            hub.start()

    assert not hub.is_running


def test_port_unknown_before_start() -> None:
    hub = EmbeddedHub(api_key="k")

    with pytest.raises(RuntimeError, match="start"):
        hub.api_url


def test_second_start_raises() -> None:
    with EmbeddedHub(api_key="k") as hub:
        with pytest.raises(RuntimeError, match="already running"):
            hub.start()
        assert hub.is_running

    assert not hub.is_running


def test_stop_twice_is_harmless() -> None:
    hub = EmbeddedHub(api_key="k").start()

    hub.stop()
    hub.stop()

    assert not hub.is_running


def test_keep_alive_requests_fast() -> None:
    # Nagle's algorithm left on made each reply on a kept-alive connection wait ~40 ms.
    with EmbeddedHub(api_key="k", rate_limits=RateLimits.off()) as hub:
        with httpx.Client(base_url=hub.api_url + "/", headers=KEY, timeout=5.0) as http:
            started = time.monotonic()
            for _ in range(100):
                http.get("tasks/pending")
            elapsed = time.monotonic() - started

    assert elapsed < 2.0, f"100 polls took {elapsed:.2f} s"


async def test_serve_in_running_loop() -> None:
    hub = EmbeddedHub(api_key="k")
    serving = asyncio.create_task(hub.serve())
    try:
        for _ in range(500):
            if hub.is_running:
                break
            await asyncio.sleep(0.01)
        assert hub.is_running
        async with httpx.AsyncClient(base_url=hub.api_url + "/", headers=KEY, timeout=5.0) as http:
            reply = await http.get("tasks/pending")
    finally:
        hub.request_stop()
        await asyncio.wait_for(serving, timeout=5.0)

    assert reply.status_code == 200
    assert not hub.is_running


def test_hub_imports_no_textual_or_agent() -> None:
    code = (
        "import sys, console.hub; "
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'textual' "
        "or m.startswith('console.tui') or m == 'console.agent']; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_run_hub_serves_until_signal(stop_signal: signal.Signals) -> None:
    code = "from console.hub import run_hub; run_hub(0, 'demo-key', generate=True, task_interval_seconds=0.05)"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = _read_banner(process)
        api_url = next(line.split()[-1] for line in banner if "API URL:" in line)
        headers = {DEFAULT_API_KEY_HEADER: "demo-key"}
        with httpx.Client(timeout=5.0) as http:
            polled = _poll_until_tasks(http, f"{api_url}/tasks/pending", headers)

        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    text = "\n".join(banner)
    assert "Key header:  X-Trust-API-Key" in text
    assert "API key:     demo-key" in text
    assert any(line.strip().startswith("curl -X POST") and "/admin/tasks" in line for line in banner)
    assert polled["trust_id"] == DEMO_TRUST_ID
    assert polled["trust_name"] == "Demo Trust"
    assert "Hub stopped." in stdout


def _read_banner(process: subprocess.Popen) -> list[str]:
    """Read stdout lines up to the end of the start-up banner, within the process timeout."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
    # readline blocks, but the banner comes as one flushed print, so each line arrives at once.
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl+C"):
            return lines
    raise AssertionError(f"no banner from the hub command: {lines}")


def _poll_until_tasks(http: httpx.Client, url: str, headers: dict[str, str]) -> dict:
    """Poll until the generator's first task arrives, for at most a few seconds."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        body = http.get(url, headers=headers).json()
        if body["tasks"]:
            return body
        time.sleep(0.05)
    raise AssertionError("the hub command generated no task")
