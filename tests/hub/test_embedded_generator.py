"""The demo task generator: task mix, payloads, determinism and stopping."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from console.hub import HubStore, TaskGenerator

DRAWS = 2000


@pytest.fixture
def store() -> HubStore:
    store = HubStore()
    store.register_trust("k", "Demo Trust")
    return store


def test_same_seed_same_tasks(store: HubStore) -> None:
    first = TaskGenerator(store, seed=7)
    second = TaskGenerator(store, seed=7)

    assert [first.next_task() for _ in range(50)] == [second.next_task() for _ in range(50)]


def test_task_mix_and_payloads(store: HubStore) -> None:
    generator = TaskGenerator(store, seed=1)
    drawn = [generator.next_task() for _ in range(DRAWS)]
    kinds = Counter(task_type if task_type in {"echo", "sleep", "fail"} else "unknown" for task_type, _ in drawn)

    assert kinds["echo"] > kinds["sleep"] > kinds["fail"] > kinds["unknown"] > 0

    sleeps = [json.loads(payload)["seconds"] for task_type, payload in drawn if task_type == "sleep"]
    short = [seconds for seconds in sleeps if seconds <= 3]
    long = [seconds for seconds in sleeps if seconds >= 20]
    assert len(short) + len(long) == len(sleeps)
    assert len(short) > 5 * len(long) > 0
    assert max(long) <= 60

    for task_type, payload in drawn:
        body = json.loads(payload)
        assert isinstance(body, dict)
        if task_type == "fail":
            assert isinstance(body["message"], str)


def test_thread_generates_until_stopped(store: HubStore) -> None:
    generator = TaskGenerator(store, interval_seconds=0.01, seed=3).start()
    try:
        produced = store.wait_for(lambda s: len(s.tasks()) >= 5, timeout=3.0)
    finally:
        generator.stop()
    count_at_stop = len(store.tasks())

    assert produced
    assert store.wait_for(lambda s: len(s.tasks()) > count_at_stop, timeout=0.1) is False


async def test_async_run_stops(store: HubStore) -> None:
    generator = TaskGenerator(store, interval_seconds=0.01, seed=3)
    running = asyncio.create_task(generator.run())

    produced = await store.wait_for_async(lambda s: len(s.tasks()) >= 3, timeout=3.0)
    generator.stop()
    await asyncio.wait_for(running, timeout=1.0)

    assert produced


def test_interval_must_be_positive(store: HubStore) -> None:
    with pytest.raises(ValueError, match="interval_seconds"):
        TaskGenerator(store, interval_seconds=0)
