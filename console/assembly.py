"""Build the agent from settings: its handlers, payload decoder and health source.

The console, the headless runner and the demo all start the agent through
`build_agent`, so each host gets the same handlers and the same checks.
"""

from __future__ import annotations

from .agent import Agent
from .events import EventBus
from .handlers import default_registry
from .settings import Settings


def build_agent(settings: Settings, bus: EventBus | None = None) -> Agent:
    """Create an agent with every handler this build provides."""
    registry = default_registry()
    return Agent(settings, registry=registry, bus=bus)
