"""Admin endpoints: enqueue, list tasks, read records and request counts."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from console.hub import EmbeddedHub, TrustIdentity


def test_enqueue_json_payload(hub: EmbeddedHub, admin: httpx.Client, trust: TrustIdentity) -> None:
    reply = admin.post("tasks", json={"task_type": "echo", "payload": {"a": 1}, "count": 3, "trust_id": trust.trust_id})

    assert reply.status_code == 201
    ids = reply.json()["ids"]
    assert len(ids) == 3
    stored = [hub.store.task(task_id) for task_id in ids]
    assert [task.payload for task in stored] == [json.dumps({"a": 1})] * 3
    assert {task.trust_id for task in stored} == {trust.trust_id}


def test_enqueue_string_payload_verbatim(hub: EmbeddedHub, admin: httpx.Client, trust: TrustIdentity) -> None:
    reply = admin.post("tasks", json={"task_type": "echo", "payload": "raw text", "trust_id": trust.trust_id})

    assert hub.store.task(reply.json()["ids"][0]).payload == "raw text"


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {}},
        {"task_type": "", "payload": {}},
        {"task_type": "echo", "count": 0},
        {"task_type": "echo", "count": "2"},
        {"task_type": "echo", "trust_id": str(uuid.uuid4())},
        {"task_type": "echo"},
    ],
    ids=["missing-type", "empty-type", "zero-count", "count-not-int", "unknown-trust", "several-trusts-no-id"],
)
def test_enqueue_invalid_422(admin: httpx.Client, trust: TrustIdentity, body: dict) -> None:
    reply = admin.post("tasks", json=body)

    assert reply.status_code == 422
    assert isinstance(reply.json()["detail"], str)


def test_list_tasks_filtered(admin: httpx.Client, client: httpx.Client, trust: TrustIdentity) -> None:
    ids = admin.post("tasks", json={"task_type": "echo", "count": 2, "trust_id": trust.trust_id}).json()["ids"]
    client.get("tasks/pending")
    client.post(f"tasks/{ids[0]}/result", json={"success": True, "result": "done"})

    listed = admin.get("tasks", params={"trust_id": trust.trust_id}).json()["tasks"]
    completed = admin.get("tasks", params={"trust_id": trust.trust_id, "status": "COMPLETED"}).json()["tasks"]
    invalid = admin.get("tasks", params={"status": "DONE"})

    assert [task["id"] for task in listed] == ids
    assert [task["status"] for task in listed] == ["COMPLETED", "IN_PROGRESS"]
    assert listed[0]["result"] == "done"
    assert listed[0]["success"] is True
    assert [task["id"] for task in completed] == [ids[0]]
    assert invalid.status_code == 422


def test_records_listed(admin: httpx.Client, client: httpx.Client, trust: TrustIdentity) -> None:
    missing_task = str(uuid.uuid4())
    client.post("trust/heartbeat")
    client.post(f"tasks/{missing_task}/result", json={"success": False, "result": None})
    client.post("cohort/results", json={"query_id": "q"})

    heartbeats = [item for item in admin.get("heartbeats").json()["heartbeats"] if item["trust_id"] == trust.trust_id]
    results = [item for item in admin.get("results").json()["results"] if item["trust_id"] == trust.trust_id]
    cohort_records = admin.get("cohort-results").json()["cohort_results"]
    cohort = [item for item in cohort_records if item["trust_id"] == trust.trust_id]

    assert [(item["body"], item["status"]) for item in heartbeats] == [(None, 200)]
    assert [(item["task_id"], item["status"]) for item in results] == [(missing_task, 404)]
    assert results[0]["body"] == {"success": False, "result": None}
    assert [item["body"] for item in cohort] == [{"query_id": "q"}]
    assert all(isinstance(item["time"], str) for item in heartbeats + results + cohort)


def test_request_counts(hub: EmbeddedHub, admin: httpx.Client, client: httpx.Client) -> None:
    before = admin.get("requests").json()
    client.get("tasks/pending")
    hub.faults.fail_next("pending", 503)
    client.get("tasks/pending")

    after = admin.get("requests").json()

    def count(snapshot: dict, status: str) -> int:
        return snapshot["counts"].get("pending", {}).get(status, 0)

    assert count(after, "200") == count(before, "200") + 1
    assert count(after, "503") == count(before, "503") + 1
    assert after["total"] == before["total"] + 2


def test_admin_body_not_json_422(admin: httpx.Client) -> None:
    reply = admin.post("tasks", content=b"task_type=echo")

    assert reply.status_code == 422


def test_unknown_path_json_404(admin: httpx.Client) -> None:
    reply = admin.get("nothing-here")

    assert reply.status_code == 404
    assert reply.json() == {"detail": "Not Found"}
