"""FLIP's seven task types end to end: sealed payload, local call, result, over loopback only."""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import FINISHED, running, wait_until

from console import assembly
from console.assembly import build_agent
from console.demo_services import DATA_ACCESS_API, IMAGING_API, DemoTrustServices
from console.event_log import log_event
from console.hub import EmbeddedHub, Task, TaskStatus
from console.settings import Settings

EMAIL = "researcher.one@example.org"
QUERY = "SELECT * FROM omop.radiology_occurrence WHERE modality = 'CT'"


def encoded(query: str) -> str:
    return base64.urlsafe_b64encode(query.encode()).decode().rstrip("=")


async def run_tasks(
    settings: Settings, hub: EmbeddedHub, tasks: list[tuple[str, Any]], log_events: bool = False
) -> list[Task]:
    """Enqueue tasks as plain JSON, run an agent until the hub has every result, and return the tasks."""
    ids = [hub.store.enqueue(task_type, payload).id for task_type, payload in tasks]
    agent = build_agent(settings)
    if log_events:
        agent.bus.subscribe(log_event)
    async with running(agent):
        await wait_until(lambda: all(hub.store.task(task_id).status in FINISHED for task_id in ids))
    return [hub.store.task(task_id) for task_id in ids]


def error_of(task: Task) -> dict[str, Any]:
    assert task.status is TaskStatus.FAILED
    assert task.result is not None
    return json.loads(task.result)


def cohort_payload(trust_id: str, query: str = QUERY) -> dict[str, str]:
    return {
        "encrypted_project_id": "gAAAAAB-opaque-to-the-trust",
        "query_id": str(uuid.uuid4()),
        "query_name": "Chest CT",
        "query": query,
        "trust_id": trust_id,
    }


def hub_project(trust_id: str) -> dict[str, Any]:
    return {
        "project_id": str(uuid.uuid4()),
        "trust_id": trust_id,
        "project_name": "Lung nodules",
        "query": QUERY,
        "users": [{"id": str(uuid.uuid4()), "email": "new.person@example.org"}],
    }


def assert_authenticated(services: DemoTrustServices, api_key: str) -> None:
    """Every local request carried the internal key, and none carried the hub's API key."""
    for request in services.requests():
        assert request.headers.get(services.internal_key_header.lower()) == services.internal_key
        assert api_key not in request.headers.values()


async def test_cohort_query_sends_counts_to_hub(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings], api_key: str
) -> None:
    payload = cohort_payload(flip_hub.trust.trust_id)

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("cohort_query", payload)])

    assert task.status is TaskStatus.COMPLETED
    assert task.result is None
    [call] = trust_services.requests()
    assert (call.service, call.method, call.path) == (DATA_ACCESS_API, "POST", "/cohort")
    assert call.body == payload
    assert_authenticated(trust_services, api_key)

    [posted] = flip_hub.store.records.cohort_results()
    assert posted.status == 200
    assert posted.body["query_id"] == payload["query_id"]
    assert posted.body["trust_id"] == flip_hub.trust.trust_id
    assert posted.body["record_count"] > 0
    values = [result["value"] for group in posted.body["data"] for result in group["results"]]
    assert "2021" in values
    assert all(isinstance(value, str) for value in values)
    counts = [result["count"] for group in posted.body["data"] for result in group["results"]]
    assert all(count == 0 or (count > 10 and count % 10 == 0) for count in counts)


async def test_persist_cohort_returns_snapshot(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings], api_key: str
) -> None:
    payload = {
        "project_id": str(uuid.uuid4()),
        "trust_id": flip_hub.trust.trust_id,
        "encrypted_project_id": "gAAAAAB-opaque",
        "query": QUERY,
        "query_id": None,
    }

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("persist_cohort", payload)])

    assert task.status is TaskStatus.COMPLETED
    assert json.loads(task.result)["row_count"] > 0
    [call] = trust_services.requests()
    assert (call.service, call.method, call.path) == (DATA_ACCESS_API, "POST", "/cohort/snapshot")
    assert call.body == {"encrypted_project_id": "gAAAAAB-opaque", "query": QUERY}
    assert_authenticated(trust_services, api_key)
    assert flip_hub.store.records.cohort_results() == []


async def test_create_imaging_returns_project(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings], api_key: str
) -> None:
    payload = hub_project(flip_hub.trust.trust_id)

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("create_imaging", payload)])

    assert task.status is TaskStatus.COMPLETED
    created = json.loads(task.result)
    assert trust_services.imaging.has_project(created["ID"])
    assert created["added_users"] == ["new.person@example.org"]
    [call] = trust_services.requests()
    assert (call.service, call.method, call.path) == (
        IMAGING_API,
        "POST",
        "/projects/create-project-from-central-hub-project",
    )
    expected_users = [{**payload["users"][0], "is_disabled": False}]
    assert call.body == {**payload, "users": expected_users, "dicom_to_nifti": True}
    assert_authenticated(trust_services, api_key)


async def test_imaging_project_calls(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings], api_key: str
) -> None:
    kept, deleted = trust_services.imaging.project_ids()[:2]
    tasks = [
        ("get_imaging_status", {"imaging_project_id": kept, "encoded_query": encoded(QUERY)}),
        ("reimport_studies", {"imaging_project_id": kept, "encoded_query": encoded(QUERY)}),
        ("delete_imaging", {"imaging_project_id": deleted}),
    ]

    status, reimport, delete = await run_tasks(make_flip_settings(max_concurrent_tasks=1), flip_hub, tasks)

    assert status.status is TaskStatus.COMPLETED
    assert json.loads(status.result)["import_status"]["successful_count"] > 0
    assert (reimport.status, reimport.result) == (TaskStatus.COMPLETED, None)
    assert (delete.status, delete.result) == (TaskStatus.COMPLETED, None)
    assert not trust_services.imaging.has_project(deleted)

    calls = [(call.method, call.path, call.query) for call in trust_services.requests(IMAGING_API)]
    assert calls == [
        ("GET", f"/retrieval/import_status_count/{kept}", {"encoded_query": encoded(QUERY)}),
        ("PUT", f"/retrieval/reimport_imaging_project_studies/{kept}", {"encoded_query": encoded(QUERY)}),
        ("DELETE", f"/projects/{deleted}", {}),
    ]
    assert [call.status for call in trust_services.requests()] == [200, 202, 200]
    assert_authenticated(trust_services, api_key)


async def test_update_user_profile_puts_user(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings], api_key: str
) -> None:
    [task] = await run_tasks(make_flip_settings(), flip_hub, [("update_user_profile", {"email": EMAIL, "enabled": False})])

    assert (task.status, task.result) == (TaskStatus.COMPLETED, None)
    assert trust_services.imaging.user_enabled(EMAIL) is False
    [call] = trust_services.requests()
    assert (call.service, call.method, call.path, call.body) == (
        IMAGING_API,
        "PUT",
        "/users",
        {"email": EMAIL, "enabled": False},
    )
    assert_authenticated(trust_services, api_key)


INVALID_PAYLOADS = [
    ("cohort_query", {"query_id": "q-1", "query": QUERY}, "encrypted_project_id: Field required"),
    ("persist_cohort", {"project_id": 7, "trust_id": "t", "encrypted_project_id": "e", "query": QUERY}, "project_id"),
    ("create_imaging", {"project_id": "not-a-uuid", "trust_id": str(uuid.uuid4()), "project_name": "x"}, "project_id"),
    ("create_imaging", {**hub_project(str(uuid.uuid4())), "users": [{"id": str(uuid.uuid4()), "email": "nobody"}]}, "users.0.email"),
    ("delete_imaging", {"imaging_project_id": "../users"}, "imaging_project_id"),
    ("get_imaging_status", {"imaging_project_id": "..", "encoded_query": "x"}, "imaging_project_id"),
    ("reimport_studies", {"imaging_project_id": "p"}, "encoded_query: Field required"),
    ("update_user_profile", {"email": EMAIL, "enabled": "sometimes"}, "enabled"),
    ("update_user_profile", ["not", "an", "object"], "a JSON list, expected an object"),
]


async def test_invalid_payloads_make_no_call(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    tasks = [(task_type, payload) for task_type, payload, _ in INVALID_PAYLOADS]

    finished = await run_tasks(make_flip_settings(), flip_hub, tasks)

    for task, (task_type, _, problem) in zip(finished, INVALID_PAYLOADS, strict=True):
        error = error_of(task)["error"]
        assert error.startswith(f"Invalid payload for {task_type}: "), error
        assert problem in error
        assert "status_code" not in error_of(task)
    assert trust_services.requests() == []


async def test_invalid_cohort_query_still_reported(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    trust_id = flip_hub.trust.trust_id
    identified = {"query_id": "q-7", "trust_id": trust_id, "query": QUERY}
    anonymous = {"query": QUERY}

    first, second = await run_tasks(
        make_flip_settings(), flip_hub, [("cohort_query", identified), ("cohort_query", anonymous)]
    )

    assert error_of(first)["error"].startswith("Invalid payload for cohort_query")
    assert error_of(second)["error"].startswith("Invalid payload for cohort_query")
    [report] = flip_hub.store.records.cohort_results()
    assert report.status == 200
    assert (report.body["query_id"], report.body["trust_id"]) == ("q-7", trust_id)
    assert report.body["error"] == error_of(first)["error"]
    assert trust_services.requests() == []


async def test_local_404_keeps_status_code(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    missing = str(uuid.uuid4())

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("delete_imaging", {"imaging_project_id": missing})])

    error = error_of(task)
    assert error["status_code"] == 404
    assert error["error"] == "imaging-api returned 404 for DELETE /projects/{imaging_project_id}: Project <masked> not found"


async def test_error_detail_masks_payload_values(
    flip_hub: EmbeddedHub,
    trust_services: DemoTrustServices,
    make_flip_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    missing_project = {"imaging_project_id": "p-secret-17", "encoded_query": encoded(QUERY)}
    missing_user = {"email": "gone.person@example.org", "enabled": True}

    status, user = await run_tasks(
        make_flip_settings(),
        flip_hub,
        [("get_imaging_status", missing_project), ("update_user_profile", missing_user)],
        log_events=True,
    )

    assert error_of(status) == {
        "error": "imaging-api returned 404 for GET /retrieval/import_status_count/{imaging_project_id}:"
        " Project <masked> not found",
        "status_code": 404,
    }
    assert error_of(user) == {
        "error": "imaging-api returned 404 for PUT /users: User <masked> not found",
        "status_code": 404,
    }
    # httpx logs request URLs at INFO, and the hosts keep its logger at WARNING; this checks trust-console's own.
    own_lines = [record.getMessage() for record in caplog.records if record.name.startswith("console")]
    assert any("imaging-api returned 404" in line for line in own_lines)
    assert not any("p-secret-17" in line or "gone.person" in line for line in own_lines)


async def test_unreachable_service_has_no_status_code(
    flip_hub: EmbeddedHub, make_flip_settings: Callable[..., Settings], closed_port: int
) -> None:
    settings = make_flip_settings(imaging_api_url=f"http://127.0.0.1:{closed_port}")
    payload = {"imaging_project_id": str(uuid.uuid4()), "encoded_query": encoded(QUERY)}

    [task] = await run_tasks(settings, flip_hub, [("get_imaging_status", payload)])

    error = error_of(task)
    assert "status_code" not in error
    assert error["error"] == (
        "imaging-api could not be reached for GET /retrieval/import_status_count/{imaging_project_id} (ConnectError)"
    )


async def test_cohort_failure_reported_before_result(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    payload = cohort_payload(flip_hub.trust.trust_id, query="DELETE FROM omop.person")

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("cohort_query", payload)])

    error = error_of(task)
    assert error["status_code"] == 400
    assert "Only SELECT statements are allowed" in error["error"]
    [report] = flip_hub.store.records.cohort_results()
    assert report.status == 200
    assert report.body["query_id"] == payload["query_id"]
    assert report.body["record_count"] == 0
    assert report.body["data"] == []
    assert report.body["error"] == error["error"]
    assert len(report.body["created"]) == len("YYYY-MM-DD")

    paths = [request.path for request in flip_hub.store.records.requests() if request.endpoint in ("cohort", "result")]
    assert paths == ["/api/cohort/results", f"/api/tasks/{task.id}/result"]


async def test_cohort_timeout_only_for_cohort_calls(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    trust_services.set_delay(DATA_ACCESS_API, 0.6)
    trust_services.set_delay(IMAGING_API, 0.6)
    settings = make_flip_settings(cohort_query_timeout_seconds=0.2)
    persist = {"project_id": "p", "trust_id": "t", "encrypted_project_id": "e", "query": QUERY}

    cohort, snapshot, user = await run_tasks(
        settings,
        flip_hub,
        [
            ("cohort_query", cohort_payload(flip_hub.trust.trust_id)),
            ("persist_cohort", persist),
            ("update_user_profile", {"email": EMAIL, "enabled": True}),
        ],
    )

    assert error_of(cohort)["error"].startswith("data-access-api timed out on POST /cohort")
    assert error_of(snapshot)["error"].startswith("data-access-api timed out on POST /cohort/snapshot")
    assert user.status is TaskStatus.COMPLETED


async def test_missing_internal_key_fails_without_call(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, make_flip_settings: Callable[..., Settings]
) -> None:
    settings = make_flip_settings(trust_internal_service_key=None)

    [task] = await run_tasks(settings, flip_hub, [("update_user_profile", {"email": EMAIL, "enabled": True})])

    assert "TRUST_INTERNAL_SERVICE_KEY is not set" in error_of(task)["error"]
    assert trust_services.requests() == []


async def test_wrong_key_fails_authentication(
    flip_hub: EmbeddedHub,
    trust_services: DemoTrustServices,
    make_flip_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_flip_settings(aes_key_base64=base64.b64encode(os.urandom(32)).decode())
    caplog.set_level(logging.WARNING, logger="console.agent")

    finished = await run_tasks(
        settings, flip_hub, [("update_user_profile", {"email": EMAIL, "enabled": True}), ("echo", {"a": 1})]
    )

    assert [error_of(task)["error"] for task in finished] == ["Invalid payload: failed authentication"] * 2
    assert trust_services.requests() == []
    mismatches = [record for record in caplog.records if "fingerprint" in record.getMessage()]
    assert len(mismatches) == 1


async def test_diagnostic_handlers_still_registered(
    flip_hub: EmbeddedHub, make_flip_settings: Callable[..., Settings]
) -> None:
    echo, fail = await run_tasks(
        make_flip_settings(), flip_hub, [("echo", {"message": "hi"}), ("fail", {"message": "on purpose"})]
    )

    assert (echo.status, json.loads(echo.result)) == (TaskStatus.COMPLETED, {"message": "hi"})
    assert error_of(fail)["error"] == "Task failed on purpose: on purpose"


async def test_clients_closed_with_agent(
    flip_hub: EmbeddedHub, make_flip_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[httpx.AsyncClient] = []
    real_local, real_hub = assembly.build_local_http_client, assembly.build_http_client

    def local_client() -> httpx.AsyncClient:
        created.append(real_local())
        return created[-1]

    def hub_client(settings: Settings) -> httpx.AsyncClient:
        created.append(real_hub(settings))
        return created[-1]

    monkeypatch.setattr(assembly, "build_local_http_client", local_client)
    monkeypatch.setattr(assembly, "build_http_client", hub_client)

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("echo", {})])

    assert task.status is TaskStatus.COMPLETED
    assert len(created) == 2
    assert all(client.is_closed for client in created)


async def test_cohort_results_retried_when_hub_busy(
    flip_hub: EmbeddedHub, make_flip_settings: Callable[..., Settings]
) -> None:
    flip_hub.faults.fail_next("cohort", 503, retry_after=0)

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("cohort_query", cohort_payload(flip_hub.trust.trust_id))])

    assert (task.status, task.result) == (TaskStatus.COMPLETED, None)
    assert [record.status for record in flip_hub.store.records.cohort_results()] == [503, 200]


async def test_cohort_results_rejected_fails_task(
    flip_hub: EmbeddedHub, make_flip_settings: Callable[..., Settings]
) -> None:
    rejection = {"detail": [{"loc": ["body", "data"], "msg": "Input should be a valid list", "input": "q-secret"}]}
    flip_hub.faults.fail_next("cohort", 422, body=rejection)

    [task] = await run_tasks(make_flip_settings(), flip_hub, [("cohort_query", cohort_payload(flip_hub.trust.trust_id))])

    error = error_of(task)
    assert error == {
        "error": "Cohort results could not be sent to the hub: the hub returned 422: body.data: Input should be a valid list"
    }
    posted = flip_hub.store.records.cohort_results()
    assert [record.status for record in posted] == [422, 200]
    assert posted[1].body["error"] == error["error"]
