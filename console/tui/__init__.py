"""The Textual operator console; the only package of trust-console that imports Textual."""

from .app import TrustConsoleApp
from .messages import AgentEventPosted

__all__ = ["AgentEventPosted", "TrustConsoleApp"]
