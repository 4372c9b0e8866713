"""`/healthz` and `/metrics` of a running agent, over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import WAIT_SECONDS, running, wait_until

from console.agent import Agent
from console.health_server import HealthServer
from console.hub import EmbeddedHub, TaskStatus
from console.metrics import assess_health
from console.records import TaskState


@contextlib.asynccontextmanager
async def served(agent: Agent) -> AsyncIterator[httpx.AsyncClient]:
    server = HealthServer(agent, 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            yield client
    finally:
        await server.stop()


async def health_of(client: httpx.AsyncClient) -> tuple[int, list[str]]:
    response = await client.get("/healthz")
    return response.status_code, response.json()["reasons"]


async def wait_for_health(client: httpx.AsyncClient, status: int, reason: str = "") -> list[str]:
    """Poll /healthz until it returns `status` with a reason containing `reason`; return the reasons."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        code, reasons = await health_of(client)
        if code == status and (not reason or any(reason in text for text in reasons)):
            return reasons
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/healthz never answered {status} with {reason!r}; last: {code} {reasons}")
        await asyncio.sleep(0.02)


async def test_healthz_turns_503_on_auth_failure_and_back(embedded_hub: EmbeddedHub, make_settings) -> None:
    agent = Agent(make_settings())

    async with running(agent), served(agent) as client:
        assert await wait_for_health(client, 200) == []
        embedded_hub.faults.fail_next("heartbeat", 401, count=3)
        await wait_for_health(client, 503, "TRUST_API_KEY")
        await wait_for_health(client, 200)


async def test_healthz_turns_503_when_hub_unreachable(embedded_hub: EmbeddedHub, make_settings) -> None:
    agent = Agent(make_settings(http_timeout_seconds=0.5))

    async with running(agent), served(agent) as client:
        await wait_for_health(client, 200)
        embedded_hub.stop()
        await wait_for_health(client, 503, "hub unreachable")
        embedded_hub.start()
        await wait_for_health(client, 200)


async def test_healthz_turns_503_on_old_undelivered_result(embedded_hub: EmbeddedHub, make_settings) -> None:
    embedded_hub.faults.fail_next("result", 503, count=10_000)
    agent = Agent(make_settings(report_stuck_after_seconds=0.3))

    async with running(agent), served(agent) as client:
        await wait_for_health(client, 200)
        embedded_hub.store.enqueue("echo", {})
        await wait_for_health(client, 503, "oldest undelivered result")
        embedded_hub.faults.clear()
        await wait_for_health(client, 200)


async def test_health_reports_dead_loop(embedded_hub: EmbeddedHub, make_settings) -> None:
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: agent.last_heartbeat_at is not None and len(agent.running_loops) == 4)
        assert assess_health(agent).healthy
        agent.running_loops.discard("report")
        health = assess_health(agent)

    assert not health.healthy
    assert health.reasons == ["loop not running: report"]


async def test_metrics_after_known_run(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 500, count=1)
    embedded_hub.faults.fail_next("result", 429, count=1, retry_after=0)
    ids = [store.enqueue("echo", {}).id for _ in range(3)]
    agent = Agent(make_settings())

    async with running(agent), served(agent) as client:
        await wait_until(lambda: all(store.task(task_id).status is TaskStatus.COMPLETED for task_id in ids))
        await wait_until(lambda: all(agent.tasks[task_id].state is TaskState.DONE for task_id in ids))
        text = (await client.get("/metrics")).text

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("trust_console_hub_responses_total", (("endpoint", "report"), ("status", "200")))] == 3
    assert samples[("trust_console_hub_responses_total", (("endpoint", "report"), ("status", "500")))] == 1
    assert samples[("trust_console_hub_responses_total", (("endpoint", "report"), ("status", "429")))] == 1
    assert samples[("trust_console_rate_limited_waits_total", (("endpoint", "report"),))] == 1
    assert samples[("trust_console_tasks", (("state", "done"),))] == 3
    assert samples[("trust_console_tasks", (("state", "awaiting_report"),))] == 0
    assert samples[("trust_console_oldest_undelivered_result_age_seconds", ())] == 0
    assert samples[("trust_console_heartbeat_round_trip_seconds_count", ())] >= 1
    assert samples[("trust_console_connectivity", (("state", "online"),))] == 1


async def test_port_in_use_names_metrics_port(embedded_hub: EmbeddedHub, make_settings) -> None:
    agent = Agent(make_settings())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(agent, port)

        with pytest.raises(OSError) as raised:
            await server.start()

    assert f"METRICS_PORT {port}" in str(raised.value)
    await agent.close()
