"""Stale recovery: IN_PROGRESS tasks go back to PENDING, then FAILED after the maximum retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from console.hub import DEFAULT_API_KEY_HEADER, EmbeddedHub, HubStore, RateLimits, TaskStatus

WAIT_SECONDS = 3.0


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def fast_stale_hub() -> Iterator[EmbeddedHub]:
    """A hub whose periodic stale recovery runs every 20 ms and requeues after 100 ms."""
    store = HubStore(stale_after_seconds=0.1, stale_check_interval_seconds=0.02, max_retries=3)
    with EmbeddedHub(store, api_key="k", rate_limits=RateLimits.off()) as hub:
        yield hub


def test_periodic_recovery_requeues_then_fails(fast_stale_hub: EmbeddedHub) -> None:
    store = fast_stale_hub.store
    task = store.enqueue("sleep", {"seconds": 60})

    with httpx.Client(base_url=fast_stale_hub.api_url + "/", headers={DEFAULT_API_KEY_HEADER: "k"}) as http:
        for retry in range(1, 4):
            handed = http.get("tasks/pending").json()["tasks"]
            assert [item["id"] for item in handed] == [task.id]
            requeued = store.wait_for(
                lambda s, n=retry: s.task(task.id).status is TaskStatus.PENDING and s.task(task.id).retries == n,
                timeout=WAIT_SECONDS,
            )
            assert requeued, f"task not back to PENDING with retries={retry}: {store.task(task.id)}"

        http.get("tasks/pending")
        failed = store.wait_for(lambda s: s.task(task.id).status is TaskStatus.FAILED, timeout=WAIT_SECONDS)

    final = store.task(task.id)
    assert failed, f"task not FAILED after the last retry: {final}"
    assert final.retries == 3
    assert final.success is False
    assert final.result == '{"error": "Exceeded maximum retries (3)"}'
    assert json.loads(final.result) == {"error": "Exceeded maximum retries (3)"}


def test_recovery_waits_for_stale_age() -> None:
    clock = FakeClock()
    store = HubStore(stale_after_seconds=1800, clock=clock)
    trust = store.register_trust("k", "Demo Trust")
    task = store.enqueue("echo", "{}")
    store.hand_out(trust.trust_id)

    clock.advance(1800)
    at_limit = store.recover_stale()
    clock.advance(1)
    over_limit = store.recover_stale()

    assert at_limit.requeued == ()
    assert over_limit.requeued == (task.id,)
    assert store.task(task.id).status is TaskStatus.PENDING
    assert store.task(task.id).handed_out_at is None


def test_recovery_counts_retries_to_max() -> None:
    clock = FakeClock()
    store = HubStore(stale_after_seconds=10, max_retries=2, clock=clock)
    trust = store.register_trust("k", "Demo Trust")
    task = store.enqueue("echo", "{}")

    outcomes = []
    for _ in range(3):
        store.hand_out(trust.trust_id)
        clock.advance(11)
        outcomes.append(store.recover_stale())

    assert [outcome.requeued for outcome in outcomes] == [(task.id,), (task.id,), ()]
    assert outcomes[-1].failed == (task.id,)
    assert store.task(task.id).result == '{"error": "Exceeded maximum retries (2)"}'


def test_late_result_accepted_after_second_hand_out() -> None:
    clock = FakeClock()
    store = HubStore(stale_after_seconds=10, clock=clock)
    trust = store.register_trust("k", "Demo Trust")
    task = store.enqueue("echo", "{}")
    store.hand_out(trust.trust_id)
    clock.advance(11)
    store.recover_stale()
    store.hand_out(trust.trust_id)

    late, _ = store.record_result(task.id, trust.trust_id, True, "first")
    second, _ = store.record_result(task.id, trust.trust_id, True, "second")

    assert late.value == 200
    assert second.value == 409
    assert store.task(task.id).result == "first"


def test_admin_triggers_recovery() -> None:
    # The periodic pass runs only every 600 s here, so the admin request does the work.
    store = HubStore(stale_after_seconds=0)
    with EmbeddedHub(store, api_key="k") as hub, httpx.Client(base_url=hub.admin_url + "/") as admin:
        task = store.enqueue("echo", "{}")
        store.hand_out(hub.trust.trust_id)

        reply = admin.post("stale-recovery")

    assert reply.status_code == 200
    assert reply.json() == {"requeued": [task.id], "failed": []}
    assert store.task(task.id).retries == 1
