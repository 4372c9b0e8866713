"""Polling for tasks and reporting results against a real hub on loopback."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from console.hub import DEFAULT_API_KEY_HEADER as KEY_HEADER
from console.hub import EmbeddedHub, TaskStatus, TrustIdentity

HTTP_TIMEOUT = httpx.Timeout(5.0)


def test_poll_hands_out_and_marks_in_progress(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", {"message": "hi"}, trust_id=trust.trust_id)

    reply = client.get("tasks/pending")

    assert reply.status_code == 200
    body = reply.json()
    assert list(body)[:2] == ["trust_id", "trust_name"]
    assert body["trust_id"] == trust.trust_id
    assert body["trust_name"] == trust.trust_name
    assert body["tasks"] == [
        {"id": task.id, "task_type": "echo", "payload": '{"message": "hi"}', "created_at": task.created_at.isoformat()}
    ]
    stored = hub.store.task(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.IN_PROGRESS
    assert stored.handed_out_at is not None


def test_poll_returns_at_most_50_oldest_first(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    created = [hub.store.enqueue("echo", {"n": n}, trust_id=trust.trust_id) for n in range(60)]

    first = client.get("tasks/pending").json()["tasks"]
    second = client.get("tasks/pending").json()["tasks"]

    assert [task["id"] for task in first] == [task.id for task in created[:50]]
    assert [task["id"] for task in second] == [task.id for task in created[50:]]
    assert len(hub.store.tasks(trust_id=trust.trust_id, status=TaskStatus.IN_PROGRESS)) == 60


def test_second_poll_does_not_repeat_tasks(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    hub.store.enqueue_many("echo", "{}", 3, trust_id=trust.trust_id)

    first = client.get("tasks/pending").json()["tasks"]
    second = client.get("tasks/pending").json()

    assert len(first) == 3
    assert second["tasks"] == []
    assert second["trust_id"] == trust.trust_id


def test_poll_sees_only_own_tasks(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    other = hub.store.register_trust(f"other-{uuid.uuid4()}", "Other Trust")
    hub.store.enqueue("echo", "{}", trust_id=other.trust_id)

    assert client.get("tasks/pending").json()["tasks"] == []
    assert hub.store.tasks(trust_id=other.trust_id)[0].status is TaskStatus.PENDING


def test_result_accepted_then_conflict(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    client.get("tasks/pending")

    accepted = client.post(f"tasks/{task.id}/result", json={"success": True, "result": '{"ok": true}'})
    resent = client.post(f"tasks/{task.id}/result", json={"success": True, "result": '{"ok": true}'})

    assert accepted.status_code == 200
    assert accepted.json()["trust_id"] == trust.trust_id
    assert accepted.json()["trust_name"] == trust.trust_name
    assert "message" in accepted.json()
    assert resent.status_code == 409
    assert "detail" in resent.json()
    stored = hub.store.task(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.COMPLETED
    assert stored.success is True
    assert stored.result == '{"ok": true}'


def test_failed_result_marks_failed(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("fail", "{}", trust_id=trust.trust_id)
    client.get("tasks/pending")

    reply = client.post(f"tasks/{task.id}/result", json={"success": False, "result": '{"error": "boom"}'})

    assert reply.status_code == 200
    stored = hub.store.task(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.FAILED
    assert stored.result == '{"error": "boom"}'


def test_result_for_pending_task_conflicts(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)

    reply = client.post(f"tasks/{task.id}/result", json={"success": True, "result": None})

    assert reply.status_code == 409
    stored = hub.store.task(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.PENDING


def test_result_unknown_task_not_found(client: httpx.Client) -> None:
    reply = client.post(f"tasks/{uuid.uuid4()}/result", json={"success": True, "result": None})

    assert reply.status_code == 404
    assert isinstance(reply.json()["detail"], str)


def test_result_other_trusts_task_forbidden(hub: EmbeddedHub, client: httpx.Client) -> None:
    other = hub.store.register_trust(f"other-{uuid.uuid4()}", "Other Trust")
    task = hub.store.enqueue("echo", "{}", trust_id=other.trust_id)
    hub.store.hand_out(other.trust_id)

    reply = client.post(f"tasks/{task.id}/result", json={"success": True, "result": None})

    assert reply.status_code == 403
    stored = hub.store.task(task.id)
    assert stored is not None
    assert stored.status is TaskStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("task_id", "body", "bad_field"),
    [
        ("not-a-uuid", {"success": True, "result": None}, ["path", "task_id"]),
        (None, {"result": "x"}, ["body", "success"]),
        (None, {"success": "yes", "result": None}, ["body", "success"]),
        (None, {"success": True, "result": 42}, ["body", "result"]),
        (None, {"success": True, "result": "x" * 10_000_001}, ["body", "result"]),
    ],
    ids=["bad-id", "missing-success", "success-not-bool", "result-not-string", "result-too-long"],
)
def test_result_invalid_body_422(
    hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity, task_id: str | None, body: dict, bad_field: list
) -> None:
    if task_id is None:
        task_id = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id).id
        client.get("tasks/pending")

    reply = client.post(f"tasks/{task_id}/result", json=body)

    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert isinstance(detail, list)
    assert [error["loc"] for error in detail] == [bad_field]


def test_result_at_max_length_accepted(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    task = hub.store.enqueue("echo", "{}", trust_id=trust.trust_id)
    client.get("tasks/pending")

    reply = client.post(f"tasks/{task.id}/result", json={"success": True, "result": "x" * 10_000_000})

    assert reply.status_code == 200


def test_result_body_not_json_422(client: httpx.Client) -> None:
    reply = client.post(f"tasks/{uuid.uuid4()}/result", content=b"success=true")

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("headers", [{}, {KEY_HEADER: "wrong-key"}], ids=["missing-key", "wrong-key"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "tasks/pending"), ("POST", f"tasks/{uuid.uuid4()}/result"), ("POST", "trust/heartbeat")],
    ids=["pending", "result", "heartbeat"],
)
def test_bad_key_401(hub: EmbeddedHub, headers: dict, method: str, path: str) -> None:
    with httpx.Client(base_url=hub.api_url + "/", timeout=HTTP_TIMEOUT) as http:
        reply = http.request(method, path, headers=headers, json={"success": True, "result": None})

    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "ApiKey"
    assert isinstance(reply.json()["detail"], str)


def test_custom_key_header_name() -> None:
    with EmbeddedHub(api_key="secret", api_key_header="Authorization") as hub:
        with httpx.Client(base_url=hub.api_url + "/", timeout=HTTP_TIMEOUT) as http:
            accepted = http.get("tasks/pending", headers={"Authorization": "secret"})
            default_header = http.get("tasks/pending", headers={KEY_HEADER: "secret"})

    assert accepted.status_code == 200
    assert default_header.status_code == 401


def test_poll_failure_500(hub: EmbeddedHub, client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_hand_out(trust_id: str, limit: int = 50) -> list:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(hub.store, "hand_out", broken_hand_out)

    reply = client.get("tasks/pending")

    assert reply.status_code == 500
    assert reply.json() == {"detail": "Internal server error"}


def test_cohort_results_recorded(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    body = {"query_id": "q-1", "trust_id": trust.trust_id, "created": "2025-01-01", "record_count": 0, "data": []}

    reply = client.post("cohort/results", json=body)

    assert reply.status_code == 200
    assert reply.json()["trust_id"] == trust.trust_id
    mine = [record for record in hub.store.records.cohort_results() if record.trust_id == trust.trust_id]
    assert [record.body for record in mine] == [body]


def test_requests_counted_per_status(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    before = hub.store.records.count_requests("result", 404)

    client.get("tasks/pending")
    client.post(f"tasks/{uuid.uuid4()}/result", json={"success": True, "result": None})

    assert hub.store.records.count_requests("result", 404) == before + 1
    mine = [record for record in hub.store.records.requests("pending") if record.trust_id == trust.trust_id]
    assert [record.status for record in mine] == [200]
    results = [record for record in hub.store.records.results() if record.trust_id == trust.trust_id]
    assert results[-1].status == 404
    assert results[-1].body == {"success": True, "result": None}


def test_payload_sent_as_given_string(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    hub.store.enqueue("echo", '{"kept": "verbatim"}', trust_id=trust.trust_id)

    task = client.get("tasks/pending").json()["tasks"][0]

    assert task["payload"] == '{"kept": "verbatim"}'
    assert json.loads(task["payload"]) == {"kept": "verbatim"}
