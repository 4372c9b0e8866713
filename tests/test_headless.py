"""`trust-console --headless` as a real process against the embedded hub."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support import start_headless, wait_for

from console.hub import EmbeddedHub, TaskStatus

@pytest.fixture
def stop_process():
    processes: list[subprocess.Popen[str]] = []
    yield processes.append
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_sigterm_drains_and_logs_tasks(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path, stop_process) -> None:
    store = embedded_hub.store
    long_task = store.enqueue("sleep", {"seconds": 1.5}).id
    short = [store.enqueue("echo", {"n": n}).id for n in range(3)]
    process = start_headless(embedded_hub, api_key, tmp_path)
    stop_process(process)

    wait_for(lambda: all(store.task(task_id).status is TaskStatus.COMPLETED for task_id in short))
    assert store.task(long_task).status is TaskStatus.IN_PROGRESS
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    process.send_signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    # The signal is handled asynchronously: enqueue only once the agent logs that it stopped claiming.
    wait_for(lambda: any("SIGTERM received" in line for line in lines))
    later = store.enqueue("echo", {}).id
    heartbeats_at_signal = len(store.records.heartbeats())
    process.wait(timeout=20)
    reader.join(timeout=10)
    stderr = "".join(lines)

    assert process.returncode == 0, stderr
    assert store.task(long_task).status is TaskStatus.COMPLETED
    assert store.task(later).status is TaskStatus.PENDING
    assert len(store.records.heartbeats()) > heartbeats_at_signal
    assert time.monotonic() - signalled_at < 15
    for task_id in [long_task, *short]:
        for step in ("started", "reported: succeeded in"):
            assert any(task_id in line and f") {step}" in line for line in stderr.splitlines()), (task_id, step)
        # The steps between start and end are logged at DEBUG only.
        assert not any(task_id in line and ") received" in line for line in stderr.splitlines())
    assert api_key not in stderr


def test_second_signal_stops_at_once(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path, stop_process) -> None:
    store = embedded_hub.store
    long_task = store.enqueue("sleep", {"seconds": 60}).id
    process = start_headless(embedded_hub, api_key, tmp_path)
    stop_process(process)

    wait_for(lambda: store.task(long_task).status is TaskStatus.IN_PROGRESS)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)

    assert process.returncode == 0, stderr
    assert "stopped at once" in stderr
    assert f"task {long_task} (sleep) not delivered at exit" in stderr
    assert store.task(long_task).status is TaskStatus.IN_PROGRESS


def test_identity_mismatch_exits_2(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path, stop_process) -> None:
    task_id = embedded_hub.store.enqueue("echo", {}).id
    process = start_headless(
        embedded_hub, api_key, tmp_path, "--expected-trust-id", "00000000-0000-4000-8000-000000000000"
    )
    stop_process(process)

    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 2, stderr
    assert "identity mismatch" in stderr
    assert "EXPECTED_TRUST_ID" in stderr
    assert embedded_hub.store.task(task_id).status is TaskStatus.PENDING
