"""Status-code paths of the hub client, against respx mocks of the three endpoints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
import respx
from pydantic import SecretStr

from console.hub_client import (
    MAX_REPLY_BYTES,
    AuthFailed,
    HubClient,
    HubUnavailable,
    MalformedReply,
    RateLimited,
    ResultRejected,
    UnexpectedStatus,
    is_task_id,
    parse_retry_after,
)
from console.settings import Settings

HUB = "https://hub.example.org/api"
TRUST = {"trust_id": "7f2c1f5e-3c7a-4d53-9a55-0b0f2b4c9d11", "trust_name": "Trust A"}
TASK_ID = "0b7e4d38-5a34-4c8e-8f3e-2d8b1a6f9c01"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,
        central_hub_api_url=HUB,
        trust_api_key=SecretStr("secret-key-123"),
        trust_api_key_header="X-Trust-API-Key",
        http_timeout_seconds=2,
    )


@pytest.fixture
async def client(settings: Settings):
    hub_client = HubClient(settings)
    yield hub_client
    await hub_client.aclose()


def task(**fields: object) -> dict[str, object]:
    entry: dict[str, object] = {"id": TASK_ID, "task_type": "echo", "payload": "{}", "created_at": "2026-12-04T10:00:00Z"}
    entry.update(fields)
    return entry


@respx.mock
async def test_poll_sends_key_header_and_parses_tasks(client: HubClient) -> None:
    route = respx.get(f"{HUB}/tasks/pending").respond(200, json={**TRUST, "tasks": [task()]})

    reply = await client.poll()

    assert route.calls.last.request.headers["X-Trust-API-Key"] == "secret-key-123"
    assert reply.identity.trust_id == TRUST["trust_id"]
    assert reply.identity.trust_name == "Trust A"
    assert [t.id for t in reply.tasks] == [TASK_ID]
    assert reply.tasks[0].payload == "{}"
    assert reply.invalid == []


@respx.mock
async def test_poll_separates_invalid_tasks(client: HubClient) -> None:
    entries = [
        task(),
        {"task_type": "echo", "payload": "{}"},
        task(id="../../x"),
        task(id="1c3d7a92-8e0f-4b5a-9c6d-7e8f9a0b1c2d", task_type=None),
        task(id="2c3d7a92-8e0f-4b5a-9c6d-7e8f9a0b1c2d", payload={"not": "a string"}),
        "not an object",
    ]
    respx.get(f"{HUB}/tasks/pending").respond(200, json={**TRUST, "tasks": entries})

    reply = await client.poll()

    assert [t.id for t in reply.tasks] == [TASK_ID]
    reasons = [invalid.reason for invalid in reply.invalid]
    assert len(reasons) == 5
    assert "no 'id'" in reasons[0]
    assert "not a UUID" in reasons[1]
    assert reply.invalid[1].task_id is None
    assert reply.invalid[2].task_id == "1c3d7a92-8e0f-4b5a-9c6d-7e8f9a0b1c2d"
    assert "task_type" in reasons[2]
    assert "payload" in reasons[3]
    assert reply.invalid[4].task_id is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>gateway</html>", "not JSON"),
        (b"[]", "expected an object"),
        (json.dumps({**TRUST, "tasks": "nope"}).encode(), "'tasks' is str"),
        (json.dumps({"tasks": []}).encode(), "identity block"),
    ],
)
@respx.mock
async def test_poll_malformed_reply(client: HubClient, body: bytes, reason: str) -> None:
    respx.get(f"{HUB}/tasks/pending").respond(200, content=body)

    with pytest.raises(MalformedReply) as raised:
        await client.poll()

    assert reason in str(raised.value)


@respx.mock
async def test_poll_refuses_oversized_body(client: HubClient) -> None:
    respx.get(f"{HUB}/tasks/pending").respond(200, content=b" " * (MAX_REPLY_BYTES + 1))

    with pytest.raises(MalformedReply) as raised:
        await client.poll()

    assert "limit" in str(raised.value)


@pytest.mark.parametrize("status", [401, 403])
@respx.mock
async def test_poll_auth_failure(client: HubClient, status: int) -> None:
    respx.get(f"{HUB}/tasks/pending").respond(
        status, json={"detail": "Invalid API key"}, headers={"WWW-Authenticate": "ApiKey"}
    )

    with pytest.raises(AuthFailed) as raised:
        await client.poll()

    assert raised.value.status_code == status
    assert "Invalid API key" in str(raised.value)


@respx.mock
async def test_rate_limited_with_retry_after_seconds(client: HubClient) -> None:
    respx.post(f"{HUB}/trust/heartbeat").respond(429, json={"detail": "Too many"}, headers={"Retry-After": "7"})

    with pytest.raises(RateLimited) as raised:
        await client.heartbeat()

    assert raised.value.retry_after_seconds == 7.0
    assert raised.value.status_code == 429


@respx.mock
async def test_rate_limited_without_retry_after(client: HubClient) -> None:
    respx.get(f"{HUB}/tasks/pending").respond(429)

    with pytest.raises(RateLimited) as raised:
        await client.poll()

    assert raised.value.retry_after_seconds is None


@pytest.mark.parametrize("status", [500, 502, 503])
@respx.mock
async def test_server_error_is_unavailable(client: HubClient, status: int) -> None:
    respx.get(f"{HUB}/tasks/pending").respond(status, json={"detail": "Internal server error"})

    with pytest.raises(HubUnavailable) as raised:
        await client.poll()

    assert raised.value.status_code == status


@respx.mock
async def test_transport_error_is_unavailable(client: HubClient) -> None:
    respx.post(f"{HUB}/trust/heartbeat").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(HubUnavailable) as raised:
        await client.heartbeat()

    assert raised.value.status_code is None


@respx.mock
async def test_timeout_is_unavailable(client: HubClient) -> None:
    respx.post(f"{HUB}/trust/heartbeat").mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(HubUnavailable) as raised:
        await client.heartbeat()

    assert "timed out" in str(raised.value)


@respx.mock
async def test_heartbeat_reads_hub_version(client: HubClient) -> None:
    respx.post(f"{HUB}/trust/heartbeat").respond(
        200, json={**TRUST, "message": "ok", "hub_version": "1.4.0", "aes_key_fingerprint": "a1b2c3d4e5f6"}
    )

    reply = await client.heartbeat()

    assert reply.hub_version == "1.4.0"
    assert reply.aes_key_fingerprint == "a1b2c3d4e5f6"
    assert reply.identity.trust_name == "Trust A"


@respx.mock
async def test_heartbeat_unknown_status_is_unexpected(client: HubClient) -> None:
    respx.post(f"{HUB}/trust/heartbeat").respond(404, json={"detail": "Not Found"})

    with pytest.raises(UnexpectedStatus) as raised:
        await client.heartbeat()

    assert raised.value.status_code == 404


@respx.mock
async def test_result_body_and_success(client: HubClient) -> None:
    route = respx.post(f"{HUB}/tasks/{TASK_ID}/result").respond(200, json={**TRUST, "message": "recorded"})

    accepted = await client.send_result(TASK_ID, False, '{"error": "boom"}')

    assert accepted.status_code == 200
    assert json.loads(route.calls.last.request.content) == {"success": False, "result": '{"error": "boom"}'}


@pytest.mark.parametrize("status", [403, 404, 409, 422])
@respx.mock
async def test_result_final_statuses(client: HubClient, status: int) -> None:
    respx.post(f"{HUB}/tasks/{TASK_ID}/result").respond(status, json={"detail": f"reason {status}"})

    with pytest.raises(ResultRejected) as raised:
        await client.send_result(TASK_ID, True, None)

    assert raised.value.status_code == status
    assert str(raised.value) == f"reason {status}"


@respx.mock
async def test_result_401_is_auth_not_final(client: HubClient) -> None:
    respx.post(f"{HUB}/tasks/{TASK_ID}/result").respond(401, json={"detail": "Invalid API key"})

    with pytest.raises(AuthFailed):
        await client.send_result(TASK_ID, True, None)


@respx.mock
async def test_result_accepted_despite_unreadable_reply(client: HubClient) -> None:
    respx.post(f"{HUB}/tasks/{TASK_ID}/result").respond(200, content=b"ok")

    accepted = await client.send_result(TASK_ID, True, None)

    assert accepted.status_code == 200
    assert accepted.identity is None


async def test_result_refuses_non_uuid_id(client: HubClient) -> None:
    with pytest.raises(ValueError):
        await client.send_result("../../admin", True, None)


def test_is_task_id() -> None:
    assert is_task_id(TASK_ID)
    assert not is_task_id("../../x")
    assert not is_task_id(f"{TASK_ID}?x=1")
    assert not is_task_id(f"{TASK_ID}/result")
    assert not is_task_id(123)


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
    http_date = format_datetime(now + timedelta(seconds=30), usegmt=True)

    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after(http_date, now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("999999", now) == 3600.0
