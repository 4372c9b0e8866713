"""The agent against the embedded hub over loopback: what the hub saw."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from console.agent import EXIT_CONFIGURATION, Agent
from console.events import AgentEvent, Connectivity, HeartbeatFailed, PollFailed, ReportFailed, TaskSkipped
from console.handlers import HandlerContext, default_registry
from console.hub import EmbeddedHub, MalformedKind, TaskStatus
from console.records import TaskState

from support import FINISHED, fast_settings, running, wait_until


def hub_statuses(hub: EmbeddedHub, ids: list[str]) -> list[TaskStatus]:
    return [hub.store.task(task_id).status for task_id in ids]


def all_finished(hub: EmbeddedHub, ids: list[str]) -> Callable[[], bool]:
    return lambda: all(status in FINISHED for status in hub_statuses(hub, ids))


def result_posts(hub: EmbeddedHub, task_id: str) -> list[Any]:
    return [record for record in hub.store.records.results() if record.task_id == task_id]


def collect(agent: Agent) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    agent.bus.subscribe(events.append)
    return events


async def test_tasks_flow_and_each_reported_once(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    echo = [store.enqueue("echo", {"n": n}).id for n in range(3)]
    failing = store.enqueue("fail", {"message": "scanner offline"}).id
    unknown = store.enqueue("mystery", {}).id
    not_json = store.enqueue("echo", "{broken").id
    ids = [*echo, failing, unknown, not_json]
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(all_finished(embedded_hub, ids))
        await wait_until(lambda: all(agent.tasks[task_id].state is TaskState.DONE for task_id in ids))

    for task_id in echo:
        task = store.task(task_id)
        assert task.status is TaskStatus.COMPLETED
        assert json.loads(task.result) == json.loads(task.payload)
    assert "scanner offline" in json.loads(store.task(failing).result)["error"]
    assert "'mystery'" in json.loads(store.task(unknown).result)["error"]
    assert json.loads(store.task(not_json).result)["error"].startswith("Invalid payload: ")
    for task_id in ids:
        posts = result_posts(embedded_hub, task_id)
        assert [post.status for post in posts] == [200], task_id
    assert store.records.heartbeats()
    assert agent.identity is not None
    assert agent.identity.trust_name == "Test Trust"


async def test_long_task_blocks_neither_heartbeats_nor_short_tasks(
    embedded_hub: EmbeddedHub, make_settings
) -> None:
    store = embedded_hub.store
    long_task = store.enqueue("sleep", {"seconds": 3}).id
    short = [store.enqueue("echo", {"n": n}).id for n in range(10)]
    agent = Agent(make_settings(max_concurrent_tasks=2))

    async with running(agent):
        await wait_until(all_finished(embedded_hub, short))
        assert store.task(long_task).status is TaskStatus.IN_PROGRESS

        # While the long handler runs, heartbeats keep their 0.1 s schedule.
        before = len(store.records.heartbeats())
        await wait_until(lambda: store.task(long_task).status is TaskStatus.COMPLETED)
        during = len(store.records.heartbeats()) - before

    assert during >= 5


async def test_slow_poll_does_not_delay_heartbeats(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: store.records.count_requests("pending") >= 1)
        embedded_hub.faults.set_delay("pending", 2.0)
        polls = store.records.count_requests("pending")
        before = len(store.records.heartbeats())
        await wait_until(lambda: store.records.count_requests("pending") > polls)
        during = len(store.records.heartbeats()) - before

    assert during >= 5


async def test_poll_claims_only_with_free_slot(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    blockers = [store.enqueue("sleep", {"seconds": 1.0}).id for _ in range(2)]
    agent = Agent(make_settings(max_concurrent_tasks=2))

    async with running(agent):
        await wait_until(lambda: all(status is TaskStatus.IN_PROGRESS for status in hub_statuses(embedded_hub, blockers)))
        later = store.enqueue("echo", {}).id
        await asyncio.sleep(0.4)
        assert store.task(later).status is TaskStatus.PENDING
        await wait_until(lambda: store.task(later).status is TaskStatus.COMPLETED)


@pytest.mark.parametrize("status", [403, 404, 409, 422])
async def test_final_statuses_never_resent(embedded_hub: EmbeddedHub, make_settings, status: int) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", status, body={"detail": f"refused {status}"})
    task_id = store.enqueue("echo", {}).id
    agent = Agent(make_settings())
    events = collect(agent)

    async with running(agent):
        await wait_until(lambda: task_id in agent.tasks and agent.tasks[task_id].state is TaskState.REJECTED)
        await asyncio.sleep(0.5)

    assert [post.status for post in result_posts(embedded_hub, task_id)] == [status]
    assert agent.tasks[task_id].rejection == f"{status}: refused {status}"
    finals = [event for event in events if isinstance(event, ReportFailed) and event.final]
    assert [event.task_id for event in finals] == [task_id]


async def test_server_errors_retried_until_delivered(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 500, count=2, body={"detail": "Internal server error"})
    task_id = store.enqueue("echo", {}).id
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)
        await wait_until(lambda: agent.tasks[task_id].state is TaskState.DONE)

    assert [post.status for post in result_posts(embedded_hub, task_id)] == [500, 500, 200]
    assert len(agent.tasks[task_id].report_attempts) == 3


async def test_retry_after_honoured(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 429, retry_after=1)
    task_id = store.enqueue("echo", {}).id
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)

    posts = result_posts(embedded_hub, task_id)
    assert [post.status for post in posts] == [429, 200]
    # The backoff without Retry-After would be about 1 s at most with jitter, so check the lower bound only.
    assert (posts[1].time - posts[0].time).total_seconds() >= 0.9


async def test_retry_after_holds_every_report(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 429, retry_after=1.5)
    task_ids = [task.id for task in store.enqueue_many("echo", {}, 6)]
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(all_finished(embedded_hub, task_ids))

    posts = [post for post in store.records.results() if post.task_id in task_ids]
    limited = [post for post in posts if post.status == 429]
    assert len(limited) == 1
    # The Retry-After covers the hub's result endpoint, not one task: only a report already sent
    # when the 429 arrived may be accepted before it ends.
    hold_ends = limited[0].time.timestamp() + 1.4
    early = [post for post in posts if post.status == 200 and post.time.timestamp() < hold_ends]
    assert len(early) <= 1
    assert sum(post.status == 200 for post in posts) == 6


async def test_operator_retry_skips_backoff(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    embedded_hub.faults.fail_next("result", 429, retry_after=600)
    task_id = store.enqueue("echo", {}).id
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: agent.can_retry_report(task_id))
        assert agent.retry_report(task_id)
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)

    assert [post.status for post in result_posts(embedded_hub, task_id)] == [429, 200]
    assert not agent.retry_report(task_id)


async def test_wrong_key_is_auth_failed_then_recovers(embedded_hub: EmbeddedHub, tmp_path) -> None:
    store = embedded_hub.store
    agent = Agent(fast_settings(embedded_hub.api_url, "late-key", tmp_path))

    async with running(agent):
        await wait_until(lambda: agent.connectivity is Connectivity.AUTH_FAILED)
        assert store.records.count_requests("pending") == 0

        store.register_trust("late-key", "Late Trust")
        task_id = store.enqueue("echo", {}, trust_id=store.trust_for_key("late-key").trust_id).id
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)

    assert agent.identity.trust_name == "Late Trust"


async def test_identity_mismatch_stops_before_any_task(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    task_id = store.enqueue("echo", {}).id
    agent = Agent(make_settings(expected_trust_id="00000000-0000-4000-8000-000000000000"))

    exit_code = await asyncio.wait_for(agent.run(), 15)

    assert exit_code == EXIT_CONFIGURATION
    assert agent.stop_reason == "identity mismatch"
    assert store.records.count_requests("pending") == 0
    assert store.task(task_id).status is TaskStatus.PENDING


async def test_malformed_replies_do_not_stop_polling(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    for kind in MalformedKind:
        embedded_hub.faults.malform_next(kind, size_bytes=20_000_000)
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: store.records.count_requests("pending") > len(MalformedKind))
        task_id = store.enqueue("echo", {}).id
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)


async def test_redelivered_task_not_run_again(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    runs: Counter[str] = Counter()

    async def counted_echo(payload: Any, context: HandlerContext) -> Any:
        runs[context.task_id] += 1
        return payload

    registry = default_registry()
    registry.register("counted", counted_echo)
    embedded_hub.faults.fail_next("result", 503, count=1000)
    task_id = store.enqueue("counted", {"x": 1}).id
    agent = Agent(make_settings(hub_backoff_max_seconds=0.2), registry=registry)
    events = collect(agent)

    async with running(agent):
        await wait_until(lambda: len(result_posts(embedded_hub, task_id)) >= 2)

        # Stale recovery on the hub hands the same task out again while its result is still undelivered.
        store.stale_after_seconds = 0
        store.recover_stale()
        await wait_until(lambda: any(isinstance(event, TaskSkipped) for event in events))
        embedded_hub.faults.clear()
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)

    assert runs[task_id] == 1
    statuses = [post.status for post in result_posts(embedded_hub, task_id)]
    assert statuses.count(200) == 1


async def test_hub_down_then_back_loses_nothing(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    ids = [store.enqueue("sleep", {"seconds": 0.5}).id for _ in range(8)]
    agent = Agent(make_settings(max_concurrent_tasks=8))
    events = collect(agent)

    async with running(agent):
        await wait_until(lambda: all(status is TaskStatus.IN_PROGRESS for status in hub_statuses(embedded_hub, ids)))
        embedded_hub.stop()
        await wait_until(lambda: agent.connectivity is Connectivity.OFFLINE)
        await asyncio.sleep(2.0)
        failures = [event for event in events if isinstance(event, (HeartbeatFailed, PollFailed, ReportFailed))]
        embedded_hub.start()
        await wait_until(all_finished(embedded_hub, ids))
        await wait_until(lambda: agent.connectivity is Connectivity.ONLINE)

    # While the hub is down only the heartbeat probes it, with backoff: about 7 heartbeats and one
    # failed attempt per result. Without that, each of the 8 results would retry on its own schedule.
    assert len(failures) <= 20
    for task_id in ids:
        assert [post.status for post in result_posts(embedded_hub, task_id)] == [200]


async def test_pause_stops_polling_but_not_heartbeats(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    agent = Agent(make_settings())

    async with running(agent):
        await wait_until(lambda: store.records.count_requests("pending") >= 1)
        agent.pause()
        await asyncio.sleep(0.3)
        polls = store.records.count_requests("pending")
        heartbeats = len(store.records.heartbeats())
        task_id = store.enqueue("echo", {}).id
        await asyncio.sleep(0.6)

        assert store.records.count_requests("pending") == polls
        assert len(store.records.heartbeats()) > heartbeats
        assert store.task(task_id).status is TaskStatus.PENDING

        agent.resume()
        await wait_until(lambda: store.task(task_id).status is TaskStatus.COMPLETED)


async def test_drain_finishes_in_flight_and_reports(embedded_hub: EmbeddedHub, make_settings) -> None:
    store = embedded_hub.store
    task_id = store.enqueue("sleep", {"seconds": 1.0}).id
    agent = Agent(make_settings())
    run = asyncio.create_task(agent.run())

    await wait_until(lambda: task_id in agent.tasks and agent.tasks[task_id].state is TaskState.RUNNING)
    later = store.enqueue("echo", {}).id
    heartbeats = len(store.records.heartbeats())
    drained = await agent.drain(timeout_seconds=10)
    exit_code = await asyncio.wait_for(run, 10)

    assert drained
    assert exit_code == 0
    assert store.task(task_id).status is TaskStatus.COMPLETED
    assert store.task(later).status is TaskStatus.PENDING
    assert len(store.records.heartbeats()) > heartbeats

