"""The trust agent: heartbeat, poll, run handlers and report, each on its own schedule.

Agent (core.py) combines one mixin per loop: heartbeat.py, polling.py,
reporting.py and control.py (operator requests and stored status).
"""

from .core import RECENT_RECORDS, Agent, HealthSource
from .exits import EXIT_CONFIGURATION, EXIT_OK

__all__ = ["EXIT_CONFIGURATION", "EXIT_OK", "RECENT_RECORDS", "Agent", "HealthSource"]
