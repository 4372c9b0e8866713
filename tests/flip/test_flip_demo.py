"""The demo: sealed FLIP tasks on the demo services from the start, and the headless command."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FINISHED, running, wait_for, wait_until

from console.assembly import build_agent
from console.demo import DemoEnvironment, demo_settings, start_demo
from console.demo_services import DATA_ACCESS_API, IMAGING_API
from console.demo_services.tasks import DemoTaskMix
from console.flip.handlers import FLIP_TASK_TYPES
from console.hub import TaskStatus
from console.hub.standalone import DEMO_TRUST_ID

FLIP_TYPES = set(FLIP_TASK_TYPES)
STARTUP_SECONDS = 3.0
"""Maximum seconds from starting the demo until five FLIP task types have finished."""


@pytest.fixture
def demo() -> Iterator[DemoEnvironment]:
    environment = start_demo(task_interval_seconds=0.2, seed=5)
    yield environment
    environment.stop()


def test_mix_draws_every_kind(demo: DemoEnvironment) -> None:
    mix = DemoTaskMix(DEMO_TRUST_ID, demo.services.imaging)
    generator = random.Random(3)

    drawn = [mix(generator, sequence) for sequence in range(600)]

    kinds = Counter(task_type for task_type, _ in drawn)
    assert FLIP_TYPES <= set(kinds)
    assert {"echo", "sleep", "fail"} <= set(kinds)
    flip_share = sum(kinds[task_type] for task_type in FLIP_TYPES) / len(drawn)
    assert 0.6 < flip_share < 0.8
    assert all(isinstance(json.loads(payload), dict) for _, payload in drawn)


async def test_demo_runs_sealed_flip_tasks(demo: DemoEnvironment, tmp_path: Path) -> None:
    started = time.monotonic()
    settings = demo_settings(
        demo.hub.api_url,
        demo.api_key,
        tmp_path / "state",
        aes_key_base64=demo.aes_key_base64,
        data_access_api_url=demo.services.data_access_api_url,
        imaging_api_url=demo.services.imaging_api_url,
        trust_internal_service_key=demo.services.internal_key,
        poll_interval_seconds=0.2,
        heartbeat_interval_seconds=0.2,
    )
    agent = build_agent(settings)

    def finished_flip_types() -> set[str]:
        return {task.task_type for task in demo.hub.store.tasks() if task.status in FINISHED} & FLIP_TYPES

    async with running(agent):
        await wait_until(lambda: len(finished_flip_types()) >= 5, STARTUP_SECONDS)
        await wait_until(lambda: any(record.body for record in demo.hub.store.records.heartbeats()))

    assert time.monotonic() - started < STARTUP_SECONDS + 2
    assert agent.local_key_fingerprint == demo.hub.aes_key_fingerprint
    completed = [task for task in demo.hub.store.tasks(status=TaskStatus.COMPLETED) if task.task_type in FLIP_TYPES]
    assert completed
    failed = [json.loads(task.result)["error"] for task in demo.hub.store.tasks(status=TaskStatus.FAILED)]
    assert not any("Invalid payload" in error for error in failed)
    assert demo.hub.store.records.cohort_results()
    assert demo.services.requests(DATA_ACCESS_API)
    assert demo.services.requests(IMAGING_API)


def test_headless_demo_starts_and_stops(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--headless", "--task-interval", "0.3"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("(cohort_query) reported" in line for line in lines), timeout=10.0)
        wait_for(lambda: any("(delete_imaging) failed" in line for line in lines), timeout=5.0)
    finally:
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        reader.join(timeout=5)

    log = "".join(lines)
    assert "Traceback" not in log
    assert "Invalid payload" not in log
    assert "imaging-api returned 404 for DELETE /projects/{imaging_project_id}" in log
