"""Per-key rate limits: 429 over the limit, with or without Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from console.hub import DEFAULT_API_KEY_HEADER, EmbeddedHub, RateLimiter, RateLimits
from console.hub.models import Endpoint

HTTP_TIMEOUT = httpx.Timeout(5.0)


@pytest.fixture
def limited_hub() -> Iterator[EmbeddedHub]:
    limits = RateLimits(pending=3, heartbeat=2, result=4, window_seconds=60.0)
    with EmbeddedHub(api_key="first", rate_limits=limits) as hub:
        hub.store.register_trust("second", "Second Trust")
        yield hub


def api(hub: EmbeddedHub, key: str) -> httpx.Client:
    return httpx.Client(base_url=hub.api_url + "/", headers={DEFAULT_API_KEY_HEADER: key}, timeout=HTTP_TIMEOUT)


def test_poll_over_limit_429(limited_hub: EmbeddedHub) -> None:
    with api(limited_hub, "first") as http:
        statuses = [http.get("tasks/pending").status_code for _ in range(4)]
        rejected = http.get("tasks/pending")

    assert statuses == [200, 200, 200, 429]
    assert rejected.status_code == 429
    assert isinstance(rejected.json()["detail"], str)
    assert 1 <= int(rejected.headers["Retry-After"]) <= 60
    assert limited_hub.store.records.count_requests("pending", 429) == 2


def test_limits_are_per_endpoint(limited_hub: EmbeddedHub) -> None:
    with api(limited_hub, "first") as http:
        heartbeats = [http.post("trust/heartbeat").status_code for _ in range(3)]
        results = [http.post(f"tasks/{uuid.uuid4()}/result", json={"success": True}).status_code for _ in range(5)]

    assert heartbeats == [200, 200, 429]
    assert results == [404, 404, 404, 404, 429]


def test_limits_are_per_key(limited_hub: EmbeddedHub) -> None:
    with api(limited_hub, "first") as first, api(limited_hub, "second") as second:
        for _ in range(3):
            first.get("tasks/pending")
        first_over = first.get("tasks/pending")
        second_reply = second.get("tasks/pending")

    assert first_over.status_code == 429
    assert second_reply.status_code == 200


def test_retry_after_can_be_left_out() -> None:
    limits = RateLimits(pending=1, send_retry_after=False)
    with EmbeddedHub(api_key="k", rate_limits=limits) as hub, api(hub, "k") as http:
        http.get("tasks/pending")
        rejected = http.get("tasks/pending")

    assert rejected.status_code == 429
    assert "Retry-After" not in rejected.headers


def test_limits_changed_on_running_hub() -> None:
    with EmbeddedHub(api_key="k", rate_limits=RateLimits.off()) as hub, api(hub, "k") as http:
        unlimited = [http.get("tasks/pending").status_code for _ in range(40)]
        hub.rate_limiter.limits = RateLimits(pending=1)
        limited = [http.get("tasks/pending").status_code for _ in range(2)]

    assert set(unlimited) == {200}
    assert limited == [200, 429]


def test_default_limits_are_flip_values() -> None:
    limits = RateLimits()

    assert limits.limit_for(Endpoint.PENDING) == 30
    assert limits.limit_for(Endpoint.HEARTBEAT) == 30
    assert limits.limit_for(Endpoint.RESULT) == 60
    assert limits.window_seconds == 60.0


def test_window_slides_with_clock() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimits(pending=2, window_seconds=10.0), clock=lambda: now[0])

    first = limiter.check("k", Endpoint.PENDING)
    now[0] = 4.0
    second = limiter.check("k", Endpoint.PENDING)
    rejected = limiter.check("k", Endpoint.PENDING)
    now[0] = 10.0
    after_first_expires = limiter.check("k", Endpoint.PENDING)

    assert first is None
    assert second is None
    assert rejected == pytest.approx(6.0)
    assert after_first_expires is None
