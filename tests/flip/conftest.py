"""Fixtures for the FLIP tests: a hub that seals payloads, the demo trust services, and agents built by build_agent."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import fast_settings

from console.demo_services import DemoTrustServices
from console.hub import EmbeddedHub, HubStore, RateLimits
from console.settings import Settings


@pytest.fixture
def aes_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def api_key() -> str:
    return f"flip-key-{uuid.uuid4()}"


@pytest.fixture
def hub_options() -> dict[str, Any]:
    """Extra EmbeddedHub arguments; a test overrides this fixture to change them."""
    return {"rate_limits": RateLimits.off()}


@pytest.fixture
def flip_hub(api_key: str, aes_key: bytes, hub_options: dict[str, Any]) -> Iterator[EmbeddedHub]:
    """A hub that seals every payload it hands out with `aes_key`."""
    hub = EmbeddedHub(
        HubStore(),
        api_key=api_key,
        trust_name="FLIP Test Trust",
        aes_key_base64=base64.b64encode(aes_key).decode(),
        **hub_options,
    )
    with hub:
        yield hub


@pytest.fixture
def trust_services() -> Iterator[DemoTrustServices]:
    with DemoTrustServices(seed=11, rows=3000) as services:
        yield services


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on, so a connection to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def make_flip_settings(
    flip_hub: EmbeddedHub, trust_services: DemoTrustServices, api_key: str, aes_key: bytes, tmp_path: Path
) -> Callable[..., Settings]:
    """Settings for an agent with the hub's key and the demo services, with short intervals."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "aes_key_base64": base64.b64encode(aes_key).decode(),
            "data_access_api_url": trust_services.data_access_api_url,
            "imaging_api_url": trust_services.imaging_api_url,
            "trust_internal_service_key": trust_services.internal_key,
            "health_collect_interval_seconds": 0.2,
        }
        values.update(overrides)
        return fast_settings(flip_hub.api_url, api_key, tmp_path / "state", **values)

    return make
