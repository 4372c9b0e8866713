"""The health snapshot: probes of the demo services, freshness, and how heartbeats carry it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from support import running, wait_until

from console import __version__
from console.assembly import build_agent
from console.demo_services import DATA_ACCESS_API, IMAGING_API, DemoTrustServices
from console.flip.health import HealthCollector, service_entry
from console.hub import EmbeddedHub, HeartbeatRecord
from console.hub.validation import validate_heartbeat_body
from console.settings import Settings


class ManualClock:
    """A monotonic clock that moves only when a test sets it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def collector_for(
    http: httpx.AsyncClient, services: dict[str, str], **options: object
) -> HealthCollector:
    return HealthCollector(http, services, interval_seconds=options.pop("interval_seconds", 1.0), **options)


def demo_services_map(trust_services: DemoTrustServices) -> dict[str, str]:
    return {DATA_ACCESS_API: trust_services.data_access_api_url, IMAGING_API: trust_services.imaging_api_url}


async def test_round_reports_each_service(http: httpx.AsyncClient, trust_services: DemoTrustServices) -> None:
    collector = collector_for(http, demo_services_map(trust_services))

    snapshot = await collector.collect_round()

    assert snapshot is not None
    assert collector.snapshot() == snapshot
    services = snapshot["services"]
    assert set(services) == {"trust-console", DATA_ACCESS_API, IMAGING_API}
    assert services["trust-console"] == {"status": "healthy", "version": __version__, "response_ms": None}
    for name in (DATA_ACCESS_API, IMAGING_API):
        assert services[name]["status"] == "healthy"
        assert services[name]["version"] == "0.1.0+demo"
        assert 0 <= services[name]["response_ms"] < 1000
    assert validate_heartbeat_body(json.dumps(snapshot).encode()) == (snapshot, [])


async def test_degraded_down_and_unreachable(
    http: httpx.AsyncClient, trust_services: DemoTrustServices, closed_port: int
) -> None:
    trust_services.set_health(IMAGING_API, "degraded")
    trust_services.set_health(DATA_ACCESS_API, "down")
    services = {**demo_services_map(trust_services), "omop-gateway": f"http://127.0.0.1:{closed_port}"}
    collector = collector_for(http, services)

    snapshot = await collector.collect_round()

    assert snapshot is not None
    assert snapshot["services"][IMAGING_API]["status"] == "degraded"
    assert snapshot["services"][IMAGING_API]["response_ms"] is not None
    assert snapshot["services"][DATA_ACCESS_API] == service_entry("down")
    assert snapshot["services"]["omop-gateway"] == service_entry("down")


async def test_slow_service_is_degraded(http: httpx.AsyncClient, trust_services: DemoTrustServices) -> None:
    trust_services.set_delay(IMAGING_API, 1.05)
    collector = collector_for(http, demo_services_map(trust_services), probe_timeout_seconds=3.0)

    snapshot = await collector.collect_round()

    assert snapshot is not None
    assert snapshot["services"][IMAGING_API]["status"] == "degraded"
    assert snapshot["services"][IMAGING_API]["response_ms"] > 1000
    assert snapshot["services"][DATA_ACCESS_API]["status"] == "healthy"


async def test_probe_timeout_is_down(http: httpx.AsyncClient, trust_services: DemoTrustServices) -> None:
    trust_services.set_delay(IMAGING_API, 0.5)
    collector = collector_for(http, demo_services_map(trust_services), probe_timeout_seconds=0.1)

    snapshot = await collector.collect_round()

    assert snapshot is not None
    assert snapshot["services"][IMAGING_API] == service_entry("down")


async def test_late_round_drops_snapshot(http: httpx.AsyncClient, trust_services: DemoTrustServices) -> None:
    collector = collector_for(
        http, demo_services_map(trust_services), probe_timeout_seconds=2.0, round_timeout_seconds=0.2
    )
    assert await collector.collect_round() is not None

    trust_services.set_delay(DATA_ACCESS_API, 0.5)
    late = await collector.collect_round()

    assert late is None
    assert collector.snapshot() is None


async def test_failed_round_drops_snapshot(
    http: httpx.AsyncClient, trust_services: DemoTrustServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = collector_for(http, demo_services_map(trust_services))
    assert await collector.collect_round() is not None

    async def broken_collect() -> dict[str, object]:
        raise RuntimeError("round failed")

    monkeypatch.setattr(collector, "_collect", broken_collect)
    failed = await collector.collect_round()

    assert failed is None
    assert collector.snapshot() is None


async def test_probe_bug_reports_unknown(
    http: httpx.AsyncClient, trust_services: DemoTrustServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = collector_for(http, demo_services_map(trust_services))

    async def broken_get(url: str, **options: object) -> httpx.Response:
        raise RuntimeError("probe failed")

    monkeypatch.setattr(http, "get", broken_get)
    snapshot = await collector.collect_round()

    assert snapshot is not None
    assert snapshot["services"][IMAGING_API] == service_entry("unknown")
    assert snapshot["services"]["trust-console"]["status"] == "healthy"


async def test_snapshot_expires_when_not_refreshed(http: httpx.AsyncClient, trust_services: DemoTrustServices) -> None:
    clock = ManualClock()
    collector = collector_for(
        http, demo_services_map(trust_services), interval_seconds=30.0, round_timeout_seconds=15.0, clock=clock
    )
    snapshot = await collector.collect_round()

    clock.now += 45.0
    fresh = collector.snapshot()
    clock.now += 0.1
    stale = collector.snapshot()

    assert fresh == snapshot
    assert stale is None


async def test_service_bounds_enforced(http: httpx.AsyncClient) -> None:
    too_many = {f"service-{number}": "http://127.0.0.1:1" for number in range(16)}

    with pytest.raises(ValueError, match="1 to 16"):
        HealthCollector(http, too_many, interval_seconds=1.0)
    with pytest.raises(ValueError, match="does not match"):
        HealthCollector(http, {"Data_Access": "http://127.0.0.1:1"}, interval_seconds=1.0)
    with pytest.raises(ValueError, match="distinct"):
        HealthCollector(http, {"trust-console": "http://127.0.0.1:1"}, interval_seconds=1.0)


def test_entry_cut_to_hub_bounds() -> None:
    entry = service_entry("healthy", "v" * 100, 5_000_000)

    assert len(entry["version"]) == 64
    assert entry["response_ms"] == 1_000_000
    assert service_entry("healthy", None, -3)["response_ms"] == 0


def bodied(hub: EmbeddedHub) -> list[int]:
    """Return the indexes of the heartbeats that carried a snapshot."""
    return [index for index, record in enumerate(hub.store.records.heartbeats()) if record.body is not None]


async def test_heartbeat_carries_degraded_service(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    trust_services.set_health(IMAGING_API, "degraded")
    agent = build_agent(make_flip_settings())

    async with running(agent):
        await wait_until(lambda: bool(bodied(flip_hub)))

    record = flip_hub.store.records.heartbeats()[bodied(flip_hub)[0]]
    assert record.status == 200
    assert record.body["services"][IMAGING_API]["status"] == "degraded"
    assert record.body["services"][DATA_ACCESS_API]["status"] == "healthy"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", record.body["collected_at"])


def heartbeats_after_rejection(hub: EmbeddedHub) -> list[HeartbeatRecord]:
    records = hub.store.records.heartbeats()
    rejected = [index for index, record in enumerate(records) if record.status == 422]
    return records[rejected[0] + 1 :] if rejected else []


async def test_rejected_snapshot_resent_bodyless_once(
    flip_hub: EmbeddedHub, make_flip_settings: Callable[..., Settings]
) -> None:
    agent = build_agent(make_flip_settings())

    async with running(agent):
        await wait_until(lambda: bool(bodied(flip_hub)))
        flip_hub.faults.fail_next("heartbeat", 422, body={"detail": [{"loc": ["body"], "msg": "rejected", "type": "x"}]})
        await wait_until(lambda: flip_hub.store.records.count_requests("heartbeat", 422) == 1)
        # The rejected snapshot is not offered again; the next collection round's one is.
        await wait_until(lambda: any(record.body is not None for record in heartbeats_after_rejection(flip_hub)))

    records = flip_hub.store.records.heartbeats()
    rejected = next(index for index, record in enumerate(records) if record.status == 422)
    after = heartbeats_after_rejection(flip_hub)
    assert records[rejected].body is not None
    assert (after[0].body, after[0].status) == (None, 200)
    assert all(record.status == 200 for record in after)
    assert any(record.body is not None for record in after[1:])


async def test_no_health_without_internal_key(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    agent = build_agent(make_flip_settings(trust_internal_service_key=None))

    async with running(agent):
        await wait_until(lambda: len(flip_hub.store.records.heartbeats()) >= 3)

    assert agent.health is None
    assert bodied(flip_hub) == []
    assert trust_services.requests(include_health=True) == []
