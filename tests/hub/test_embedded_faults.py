"""Fault injection: injected statuses, Retry-After, delays and malformed poll bodies."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from console.hub import EmbeddedHub, MalformedKind, TaskStatus, TrustIdentity


def test_status_fault_for_next_requests(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    hub.faults.fail_next("pending", 503, count=2)

    statuses = [client.get("tasks/pending").status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    mine = [record.status for record in hub.store.records.requests("pending") if record.trust_id == trust.trust_id]
    assert mine == [200]
    assert hub.faults.snapshot()["status"] == {}


def test_status_fault_recorded_with_status(hub: EmbeddedHub, client: httpx.Client) -> None:
    before = hub.store.records.count_requests("heartbeat", 502)
    hub.faults.fail_next("heartbeat", 502)

    reply = client.post("trust/heartbeat")

    assert reply.status_code == 502
    assert hub.store.records.count_requests("heartbeat", 502) == before + 1
    assert hub.store.records.heartbeats()[-1].status == 502


def test_status_fault_default_bodies(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.fail_next("pending", 500)
    hub.faults.fail_next("pending", 503)

    server_error = client.get("tasks/pending")
    unavailable = client.get("tasks/pending")

    assert server_error.json() == {"detail": "Internal server error"}
    assert unavailable.json() == {"detail": "Service Unavailable"}


def test_status_fault_custom_body_and_text(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.fail_next("result", 500, body={"detail": "custom"})
    hub.faults.fail_next("result", 502, text="<html>Bad Gateway</html>")

    custom = client.post("tasks/00000000-0000-4000-8000-000000000000/result", json={"success": True})
    proxy = client.post("tasks/00000000-0000-4000-8000-000000000000/result", json={"success": True})

    assert custom.json() == {"detail": "custom"}
    assert proxy.status_code == 502
    assert proxy.text == "<html>Bad Gateway</html>"
    assert proxy.headers["content-type"].startswith("text/plain")


def test_status_fault_for_all_endpoints(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.fail_next("*", 503, count=2)

    poll = client.get("tasks/pending")
    heartbeat = client.post("trust/heartbeat")
    after = client.get("tasks/pending")

    assert poll.status_code == 503
    assert heartbeat.status_code == 503
    assert after.status_code == 200


def test_endpoint_fault_before_wildcard(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.fail_next("*", 500)
    hub.faults.fail_next("pending", 429)

    first = client.get("tasks/pending")
    second = client.get("tasks/pending")

    assert first.status_code == 429
    assert second.status_code == 500


def test_status_fault_retry_after_seconds(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.fail_next("pending", 429, retry_after=7)

    reply = client.get("tasks/pending")

    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "7"


def test_status_fault_retry_after_http_date(hub: EmbeddedHub, client: httpx.Client) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    hub.faults.fail_next("heartbeat", 503, retry_after=when)

    reply = client.post("trust/heartbeat")

    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == when


def test_status_fault_needs_no_key(hub: EmbeddedHub) -> None:
    hub.faults.fail_next("pending", 503)

    with httpx.Client(base_url=hub.api_url + "/", timeout=5.0) as anonymous:
        reply = anonymous.get("tasks/pending")

    assert reply.status_code == 503


def test_injected_401_carries_challenge(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.fail_next("pending", 401)

    reply = client.get("tasks/pending")

    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "ApiKey"


def test_delay_applies_to_one_endpoint(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.set_delay("heartbeat", 0.3)

    started = time.monotonic()
    client.post("trust/heartbeat")
    heartbeat_seconds = time.monotonic() - started
    started = time.monotonic()
    client.get("tasks/pending")
    poll_seconds = time.monotonic() - started

    assert heartbeat_seconds >= 0.3
    assert poll_seconds < 0.3


def test_delay_removed_with_zero(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.set_delay("*", 0.3)
    hub.faults.set_delay("*", 0)

    started = time.monotonic()
    client.get("tasks/pending")

    assert time.monotonic() - started < 0.3


def test_malformed_not_json(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    hub.faults.malform_next(MalformedKind.NOT_JSON)

    broken = client.get("tasks/pending")
    repaired = client.get("tasks/pending")

    assert broken.status_code == 200
    assert broken.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert [item["id"] for item in repaired.json()["tasks"]] == [task.id]


def test_malformed_tasks_not_list(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    hub.faults.malform_next("tasks_not_list")

    body = client.get("tasks/pending").json()

    assert body["trust_id"] == trust.trust_id
    assert isinstance(body["tasks"], dict)
    assert hub.store.task(task.id).status is TaskStatus.PENDING


def test_malformed_task_missing_id(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    first = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    second = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    hub.faults.malform_next(MalformedKind.TASK_MISSING_ID)

    tasks = client.get("tasks/pending").json()["tasks"]

    assert "id" not in tasks[0]
    assert tasks[0]["task_type"] == "echo"
    assert tasks[1]["id"] == second.id
    assert hub.store.task(first.id).status is TaskStatus.IN_PROGRESS
    assert hub.store.task(second.id).status is TaskStatus.IN_PROGRESS


def test_malformed_task_missing_task_type(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    hub.faults.malform_next(MalformedKind.TASK_MISSING_TASK_TYPE)

    tasks = client.get("tasks/pending").json()["tasks"]

    assert tasks == [{"id": task.id, "payload": "{}", "created_at": task.created_at.isoformat()}]
    assert hub.store.task(task.id).status is TaskStatus.IN_PROGRESS


def test_malformed_missing_field_without_tasks(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.malform_next(MalformedKind.TASK_MISSING_TASK_TYPE)

    tasks = client.get("tasks/pending").json()["tasks"]

    assert len(tasks) == 1
    assert "task_type" not in tasks[0]
    assert hub.store.task(tasks[0]["id"]) is None


def test_malformed_oversized(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    hub.faults.malform_next(MalformedKind.OVERSIZED, size_bytes=3_000_000)

    reply = client.get("tasks/pending")

    assert len(reply.content) == 3_000_000
    assert reply.json()["tasks"] == []
    assert hub.store.task(task.id).status is TaskStatus.PENDING


def test_malformed_for_next_n_polls(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.malform_next(MalformedKind.NOT_JSON, count=2)

    bodies = [client.get("tasks/pending").content for _ in range(3)]

    assert bodies[0] == bodies[1]
    assert json.loads(bodies[2])["tasks"] == []


def test_malformed_waits_for_authenticated_poll(hub: EmbeddedHub, client: httpx.Client) -> None:
    hub.faults.malform_next(MalformedKind.NOT_JSON)

    with httpx.Client(base_url=hub.api_url + "/", timeout=5.0) as anonymous:
        unauthorized = anonymous.get("tasks/pending")
    broken = client.get("tasks/pending")

    assert unauthorized.status_code == 401
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda faults: faults.fail_next("poll", 503), "unknown endpoint"),
        (lambda faults: faults.fail_next("pending", 99), "status"),
        (lambda faults: faults.fail_next("pending", 503, count=0), "count"),
        (lambda faults: faults.set_delay("pending", -1), "delay"),
        (lambda faults: faults.malform_next("truncated"), "malformed body kind"),
    ],
    ids=["endpoint", "status", "count", "delay", "kind"],
)
def test_invalid_fault_rejected(hub: EmbeddedHub, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(hub.faults)


def test_admin_faults_endpoints(hub: EmbeddedHub, client: httpx.Client, admin: httpx.Client) -> None:
    added = admin.post("faults", json={"kind": "status", "endpoint": "pending", "status": 503, "retry_after": "2"})
    delayed = admin.post("faults", json={"kind": "delay", "endpoint": "result", "seconds": 0.1})
    malformed = admin.post("faults", json={"kind": "malformed", "malformed": "oversized", "size_bytes": 1000})
    rejected = admin.post("faults", json={"kind": "status", "endpoint": "pending"})

    assert added.status_code == 201
    assert delayed.status_code == 201
    assert malformed.status_code == 201
    assert rejected.status_code == 422
    active = admin.get("faults").json()["faults"]
    assert active["status"]["pending"][0]["retry_after"] == "2"
    assert active["delays"] == {"result": 0.1}
    assert active["malformed"] == [{"kind": "oversized", "remaining": 1, "size_bytes": 1000}]

    faulted = client.get("tasks/pending")
    oversized = client.get("tasks/pending")
    cleared = admin.delete("faults").json()["faults"]

    assert faulted.status_code == 503
    assert faulted.headers["Retry-After"] == "2"
    assert len(oversized.content) == 1000
    assert cleared == {"status": {}, "delays": {}, "malformed": []}
