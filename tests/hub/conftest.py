"""Fixtures for the embedded hub tests: a shared hub on loopback and a fresh trust per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from console.hub import DEFAULT_API_KEY_HEADER, EmbeddedHub, HubStore, RateLimits, TrustIdentity

# Every request in these tests goes to 127.0.0.1; none waits longer than this.
HTTP_TIMEOUT = httpx.Timeout(5.0)


@pytest.fixture(scope="session")
def shared_hub() -> Iterator[EmbeddedHub]:
    """One hub for the tests that need no special settings; each test gets its own trust on it."""
    hub = EmbeddedHub(HubStore(), rate_limits=RateLimits.off())
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(shared_hub: EmbeddedHub) -> Iterator[EmbeddedHub]:
    """The shared hub, with its faults cleared after each test."""
    yield shared_hub
    shared_hub.faults.clear()


@pytest.fixture
def api_key() -> str:
    return f"key-{uuid.uuid4()}"


@pytest.fixture
def trust(hub: EmbeddedHub, api_key: str) -> TrustIdentity:
    return hub.store.register_trust(api_key, f"Trust {api_key[-6:]}")


@pytest.fixture
def client(hub: EmbeddedHub, api_key: str, trust: TrustIdentity) -> Iterator[httpx.Client]:
    """A client for `/api` that sends the test trust's key."""
    headers = {DEFAULT_API_KEY_HEADER: api_key}
    with httpx.Client(base_url=hub.api_url + "/", headers=headers, timeout=HTTP_TIMEOUT) as http:
        yield http


@pytest.fixture
def admin(hub: EmbeddedHub) -> Iterator[httpx.Client]:
    """A client for `/admin`, which takes no key."""
    with httpx.Client(base_url=hub.admin_url + "/", timeout=HTTP_TIMEOUT) as http:
        yield http
