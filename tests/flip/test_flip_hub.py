"""The embedded hub as a FLIP hub: sealed payloads and checked cohort results."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from console.flip.crypto import SHARED_KID, key_fingerprint, open_envelope, task_context
from console.handlers import InvalidPayload
from console.hub import EmbeddedHub, HubStore, RateLimits

KEY = os.urandom(32)


@pytest.fixture
def sealing_hub() -> Iterator[EmbeddedHub]:
    hub = EmbeddedHub(
        HubStore(), api_key="k", rate_limits=RateLimits.off(), aes_key_base64=base64.b64encode(KEY).decode()
    )
    with hub:
        yield hub


@pytest.fixture
def client(sealing_hub: EmbeddedHub) -> Iterator[httpx.Client]:
    headers = {sealing_hub.api_key_header: "k"}
    with httpx.Client(base_url=sealing_hub.api_url + "/", headers=headers, timeout=5.0) as http:
        yield http


def test_payloads_sealed_per_task_type(sealing_hub: EmbeddedHub, client: httpx.Client) -> None:
    sealing_hub.store.enqueue("delete_imaging", {"imaging_project_id": "p-1"})
    sealing_hub.store.enqueue("echo", '{"kept": "verbatim"}')

    tasks = client.get("tasks/pending").json()["tasks"]

    assert [task["task_type"] for task in tasks] == ["delete_imaging", "echo"]
    opened = [open_envelope(task["payload"], {SHARED_KID: KEY}, task_context(task["task_type"])) for task in tasks]
    assert json.loads(opened[0]) == {"imaging_project_id": "p-1"}
    assert opened[1] == '{"kept": "verbatim"}'
    with pytest.raises(InvalidPayload, match="failed authentication"):
        open_envelope(tasks[0]["payload"], {SHARED_KID: KEY}, task_context("echo"))


def test_store_keeps_plaintext(sealing_hub: EmbeddedHub, client: httpx.Client) -> None:
    task = sealing_hub.store.enqueue("echo", {"message": "hi"})

    client.get("tasks/pending")

    assert sealing_hub.store.task(task.id).payload == '{"message": "hi"}'


def test_heartbeat_fingerprint_matches_key(client: httpx.Client) -> None:
    reply = client.post("trust/heartbeat")

    assert reply.json()["aes_key_fingerprint"] == key_fingerprint(KEY)


def test_hub_without_key_sends_plaintext() -> None:
    with EmbeddedHub(HubStore(), api_key="k", rate_limits=RateLimits.off()) as hub:
        hub.store.enqueue("echo", {"message": "hi"})
        with httpx.Client(base_url=hub.api_url + "/", headers={hub.api_key_header: "k"}, timeout=5.0) as http:
            task = http.get("tasks/pending").json()["tasks"][0]

    assert task["payload"] == '{"message": "hi"}'


def cohort_body(trust_id: str, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "query_id": str(uuid.uuid4()),
        "trust_id": trust_id,
        "created": "2025-01-01",
        "record_count": 120,
        "data": [{"name": "sex", "results": [{"value": "F", "count": 60}, {"value": "M", "count": 60}]}],
        "suppressed": False,
    }
    body.update(changes)
    return body


def test_cohort_results_accepted(sealing_hub: EmbeddedHub, client: httpx.Client) -> None:
    trust_id = sealing_hub.trust.trust_id

    counts = client.post("cohort/results", json=cohort_body(trust_id))
    report = client.post("cohort/results", json=cohort_body(trust_id, record_count=0, data=[], error="Invalid SQL"))
    null_data = client.post("cohort/results", json=cohort_body(trust_id, record_count=0, data=None))

    assert counts.status_code == 200
    assert report.status_code == 200
    assert null_data.status_code == 200


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"data": [{"name": "age", "results": [{"value": 42, "count": 20}]}]}, ["body", "data", 0, "results", 0, "value"]),
        ({"data": [{"name": "age", "results": [{"value": "42", "count": "20"}]}]}, ["body", "data", 0, "results", 0, "count"]),
        ({"record_count": True}, ["body", "record_count"]),
        ({"data": {"name": "age"}}, ["body", "data"]),
        ({"error": 5}, ["body", "error"]),
        ({"query_id": None}, ["body", "query_id"]),
    ],
)
def test_cohort_results_invalid_get_422(
    sealing_hub: EmbeddedHub, client: httpx.Client, changes: dict[str, object], loc: list[object]
) -> None:
    reply = client.post("cohort/results", json=cohort_body(sealing_hub.trust.trust_id, **changes))

    assert reply.status_code == 422
    assert [problem["loc"] for problem in reply.json()["detail"]] == [loc]


def test_cohort_results_for_other_trust_get_403(client: httpx.Client) -> None:
    reply = client.post("cohort/results", json=cohort_body(str(uuid.uuid4())))

    assert reply.status_code == 403
    assert "not authorised" in reply.json()["detail"]
