"""Fixtures for the console tests: a real embedded hub on 127.0.0.1 and apps hosting real agents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.agent import Agent
from console.hub import EmbeddedHub, RateLimits
from console.tui import TrustConsoleApp

from tui_support import API_KEY, TRUST_NAME, MakeApp, fast_settings


@pytest.fixture
def hub() -> Iterator[EmbeddedHub]:
    """An embedded hub without rate limits, because the tests poll five times a second."""
    with EmbeddedHub(api_key=API_KEY, trust_name=TRUST_NAME, rate_limits=RateLimits.off()) as running:
        yield running


@pytest.fixture
async def make_app(hub: EmbeddedHub, tmp_path: Path) -> AsyncIterator[MakeApp]:
    """Return a factory of consoles, each hosting a new agent; every agent is closed afterwards.

    Keyword arguments override settings; `agent_options` are passed to Agent itself. `keymap`
    defaults to none, so a TRUST_CONSOLE_KEYMAP in the environment cannot change the keys;
    pass None to read it.
    """
    agents: list[Agent] = []

    def make(
        agent_options: dict[str, Any] | None = None, keymap: dict[str, str] | None = {}, **overrides: Any
    ) -> TrustConsoleApp:
        agent = Agent(fast_settings(hub, tmp_path, **overrides), **(agent_options or {}))
        agents.append(agent)
        return TrustConsoleApp(agent, screenshot_dir=tmp_path, keymap=keymap)

    yield make

    for agent in agents:
        agent.stop("test finished")
        await agent.close()
