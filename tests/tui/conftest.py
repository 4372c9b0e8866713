"""Fixtures for the console tests: a real embedded hub on 127.0.0.1 and apps hosting real agents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.agent import Agent
from console.hub import EmbeddedHub, RateLimits
from console.settings import Settings
from console.tui import TrustConsoleApp

from tui_support import API_KEY, TRUST_NAME, MakeApp


@pytest.fixture
def hub() -> Iterator[EmbeddedHub]:
    """An embedded hub without rate limits, because the tests poll five times a second."""
    with EmbeddedHub(api_key=API_KEY, trust_name=TRUST_NAME, rate_limits=RateLimits.off()) as running:
        yield running


def fast_settings(hub: EmbeddedHub, state_dir: Path, **overrides: Any) -> Settings:
    """Build settings that poll and heartbeat every 0.2 s against `hub`."""
    values: dict[str, Any] = {
        "central_hub_api_url": hub.api_url,
        "trust_api_key": API_KEY,
        "poll_interval_seconds": 0.2,
        "heartbeat_interval_seconds": 0.2,
        "poll_burst_interval_seconds": 0.05,
        "hub_backoff_max_seconds": 1.0,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def make_app(hub: EmbeddedHub, tmp_path: Path) -> AsyncIterator[MakeApp]:
    """Return a factory of consoles, each hosting a new agent; every agent is closed afterwards."""
    agents: list[Agent] = []

    def make(**overrides: Any) -> TrustConsoleApp:
        agent = Agent(fast_settings(hub, tmp_path, **overrides))
        agents.append(agent)
        return TrustConsoleApp(agent, screenshot_dir=tmp_path)

    yield make

    for agent in agents:
        agent.stop("test finished")
        await agent.close()
