"""Heartbeats with and without a health snapshot."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from console.hub import HUB_VERSION, EmbeddedHub, TrustIdentity

HTTP_TIMEOUT = httpx.Timeout(5.0)


def snapshot(**services: dict) -> dict:
    return {"services": services, "collected_at": "2025-01-01T00:00:00Z"}


def healthy(version: str | None = "1.0.0", response_ms: int | None = 12) -> dict:
    return {"status": "healthy", "version": version, "response_ms": response_ms}


def test_heartbeat_valid_snapshot(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    degraded = {"status": "degraded", "version": None, "response_ms": 1500}
    body = snapshot(**{"trust-api": healthy(), "data-access-api": degraded})

    reply = client.post("trust/heartbeat", json=body)

    assert reply.status_code == 200
    assert reply.json() == {
        "trust_id": trust.trust_id,
        "trust_name": trust.trust_name,
        "message": "Heartbeat received",
        "hub_version": HUB_VERSION,
        "aes_key_fingerprint": None,
    }
    mine = [record for record in hub.store.records.heartbeats() if record.trust_id == trust.trust_id]
    assert [(record.body, record.status) for record in mine] == [(body, 200)]
    assert hub.store.records.last_heartbeat_at(trust.trust_id) == mine[0].time


def test_heartbeat_without_body(hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity) -> None:
    reply = client.post("trust/heartbeat")

    assert reply.status_code == 200
    assert reply.json()["trust_id"] == trust.trust_id
    mine = [record for record in hub.store.records.heartbeats() if record.trust_id == trust.trust_id]
    assert [(record.body, record.status) for record in mine] == [(None, 200)]


def test_heartbeat_null_body_has_no_snapshot(client: httpx.Client) -> None:
    reply = client.post("trust/heartbeat", content=b"null", headers={"Content-Type": "application/json"})

    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("body", "bad_locations"),
    [
        ({"collected_at": "2025-01-01T00:00:00Z"}, [["body", "services"]]),
        (snapshot(), [["body", "services"]]),
        ({"services": {f"svc-{n}": healthy() for n in range(17)}}, [["body", "services"]]),
        ({"services": ["trust-api"]}, [["body", "services"]]),
        (snapshot(**{"Trust_API": healthy()}), [["body", "services", "Trust_API", "[key]"]]),
        (snapshot(**{"a" * 33: healthy()}), [["body", "services", "a" * 33, "[key]"]]),
        (snapshot(db={"status": "ok"}), [["body", "services", "db", "status"]]),
        (snapshot(db={"version": "1"}), [["body", "services", "db", "status"]]),
        (snapshot(db=healthy(version="v" * 65)), [["body", "services", "db", "version"]]),
        (snapshot(db=healthy(version=3)), [["body", "services", "db", "version"]]),
        (snapshot(db=healthy(response_ms=-1)), [["body", "services", "db", "response_ms"]]),
        (snapshot(db=healthy(response_ms=1_000_001)), [["body", "services", "db", "response_ms"]]),
        (snapshot(db=healthy(response_ms=1.5)), [["body", "services", "db", "response_ms"]]),
        (snapshot(db=healthy(response_ms=True)), [["body", "services", "db", "response_ms"]]),
        (snapshot(db="healthy"), [["body", "services", "db"]]),
        (
            snapshot(db={"status": "up", "version": 1, "response_ms": "5"}),
            [
                ["body", "services", "db", "status"],
                ["body", "services", "db", "version"],
                ["body", "services", "db", "response_ms"],
            ],
        ),
        ([], [["body"]]),
    ],
    ids=[
        "missing-services",
        "no-services",
        "17-services",
        "services-not-object",
        "key-bad-characters",
        "key-too-long",
        "status-not-in-enum",
        "status-missing",
        "version-too-long",
        "version-not-string",
        "response-ms-negative",
        "response-ms-too-large",
        "response-ms-float",
        "response-ms-bool",
        "entry-not-object",
        "three-errors",
        "body-not-object",
    ],
)
def test_heartbeat_invalid_snapshot_422(
    hub: EmbeddedHub, client: httpx.Client, trust: TrustIdentity, body: object, bad_locations: list
) -> None:
    reply = client.post("trust/heartbeat", json=body)

    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert isinstance(detail, list)
    assert [error["loc"] for error in detail] == bad_locations
    assert all(isinstance(error["msg"], str) for error in detail)
    assert hub.store.records.last_heartbeat_at(trust.trust_id) is None


def test_heartbeat_limits_inclusive(client: httpx.Client) -> None:
    services = {f"svc-{n}": healthy(version="v" * 64, response_ms=1_000_000) for n in range(16)}
    services["svc-0"] = healthy(response_ms=0)
    services["a" * 32] = services.pop("svc-15")

    reply = client.post("trust/heartbeat", json={"services": services})

    assert reply.status_code == 200


def test_heartbeat_entry_without_version_accepted(client: httpx.Client) -> None:
    reply = client.post("trust/heartbeat", json=snapshot(db={"status": "unknown"}))

    assert reply.status_code == 200


def test_heartbeat_body_not_json_422(client: httpx.Client) -> None:
    reply = client.post("trust/heartbeat", content=b"{not json")

    assert reply.status_code == 422
    assert reply.json()["detail"][0]["type"] == "json_invalid"


def test_heartbeat_reports_aes_fingerprint() -> None:
    key = bytes(range(32))
    expected = hashlib.sha256(key).hexdigest()[:12]

    with EmbeddedHub(api_key="k", aes_key_base64=base64.b64encode(key).decode()) as hub:
        with httpx.Client(base_url=hub.api_url + "/", timeout=HTTP_TIMEOUT) as http:
            reply = http.post("trust/heartbeat", headers={hub.api_key_header: "k"})

    assert reply.status_code == 200
    assert reply.json()["aes_key_fingerprint"] == expected


def test_aes_key_of_wrong_size_rejected() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        EmbeddedHub(api_key="k", aes_key_base64=base64.b64encode(b"short").decode())


def test_admin_trusts_shows_online(client: httpx.Client, admin: httpx.Client, trust: TrustIdentity) -> None:
    def listed() -> dict:
        return next(item for item in admin.get("trusts").json()["trusts"] if item["trust_id"] == trust.trust_id)

    before = listed()
    client.post("trust/heartbeat")
    after = listed()

    assert before["online"] is False
    assert before["last_heartbeat_at"] is None
    assert after["online"] is True
    assert after["last_heartbeat_at"] is not None
