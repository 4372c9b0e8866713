"""The Textual operator console; the only package of trust-console that imports Textual."""

from .app import TrustConsoleApp
from .messages import AgentEventsPending

__all__ = ["AgentEventsPending", "TrustConsoleApp"]
