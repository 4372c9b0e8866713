"""Shared fixtures: an embedded hub on loopback and agent settings with short intervals."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import fast_settings

from console.hub import EmbeddedHub, HubStore, RateLimits
from console.settings import Settings


@pytest.fixture
def api_key() -> str:
    return f"test-key-{uuid.uuid4()}"


@pytest.fixture
def embedded_hub(api_key: str) -> Iterator[EmbeddedHub]:
    hub = EmbeddedHub(HubStore(), api_key=api_key, trust_name="Test Trust", rate_limits=RateLimits.off())
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def make_settings(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return fast_settings(embedded_hub.api_url, api_key, tmp_path / "state", **overrides)

    return make
