"""A burst of sealed FLIP tasks against a hub that enforces FLIP's rate limits."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from support import running, wait_until

from console.assembly import build_agent
from console.demo_services import DemoTrustServices
from console.hub import EmbeddedHub, RateLimits, TaskStatus
from console.records import TaskState
from console.settings import Settings

BURST = 100
WINDOW_SECONDS = 2.0
"""FLIP's per-key limits (30 polls, 30 heartbeats, 60 results) per window, with a shorter window than FLIP's minute."""


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"rate_limits": RateLimits(window_seconds=WINDOW_SECONDS)}


def burst_tasks(trust_id: str, project_id: str) -> list[tuple[str, dict[str, Any]]]:
    query = "SELECT * FROM omop.radiology_occurrence WHERE body_part = 'CHEST'"
    encoded = base64.urlsafe_b64encode(query.encode()).decode()
    kinds: list[Callable[[int], tuple[str, dict[str, Any]]]] = [
        lambda n: (
            "cohort_query",
            {"encrypted_project_id": "e", "query_id": f"q-{n}", "query_name": "n", "query": query, "trust_id": trust_id},
        ),
        lambda n: ("persist_cohort", {"project_id": "p", "trust_id": trust_id, "encrypted_project_id": "e", "query": query}),
        lambda n: (
            "create_imaging",
            {"project_id": str(uuid.uuid4()), "trust_id": trust_id, "project_name": f"burst-{n}"},
        ),
        lambda n: ("get_imaging_status", {"imaging_project_id": project_id, "encoded_query": encoded}),
        lambda n: ("reimport_studies", {"imaging_project_id": project_id, "encoded_query": encoded}),
        lambda n: ("update_user_profile", {"email": "researcher.two@example.org", "enabled": n % 2 == 0}),
        lambda n: ("echo", {"sequence": n}),
    ]
    return [kinds[n % len(kinds)](n) for n in range(BURST)]


async def test_burst_delivered_exactly_once(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    project_id = trust_services.imaging.project_ids()[0]
    tasks = burst_tasks(flip_hub.trust.trust_id, project_id)
    ids = [flip_hub.store.enqueue(task_type, payload).id for task_type, payload in tasks]
    agent = build_agent(make_flip_settings(max_concurrent_tasks=16, heartbeat_interval_seconds=0.5))

    async with running(agent):
        await wait_until(lambda: all(flip_hub.store.task(task_id).status is TaskStatus.COMPLETED for task_id in ids))
        await wait_until(lambda: all(agent.tasks[task_id].state is TaskState.DONE for task_id in ids))

    accepted = Counter(record.task_id for record in flip_hub.store.records.results() if record.status == 200)
    assert accepted == Counter({task_id: 1 for task_id in ids})
    counts = flip_hub.store.records.request_counts()
    assert counts["result"].get(429, 0) > 0
    assert set(counts["result"]) == {200, 429}
    assert all(200 in by_status for by_status in counts.values())
    assert len(flip_hub.store.records.cohort_results()) == len([n for n in range(BURST) if n % 7 == 0])
