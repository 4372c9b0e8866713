"""Helpers for the console tests: bounded waits and the plain text that widgets show."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from textual.pilot import Pilot
from textual.widgets import RichLog, Static

from console.hub import EmbeddedHub
from console.settings import Settings
from console.tui import TrustConsoleApp
from console.tui.detail import TaskDetail

API_KEY = "tui-test-key-0123456789abcdef"
TRUST_NAME = "Test Trust"
SIZE = (140, 40)

MakeApp = Callable[..., TrustConsoleApp]


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


async def eventually(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Let the app run until `condition()` holds; False if it still fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await pilot.pause(0.02)
    return True


def plain_text(renderable: RenderableType, width: int = 120) -> str:
    """Render a Rich renderable to plain text, as a terminal of `width` columns would show it."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def static_text(widget: Static, width: int = 120) -> str:
    """Return the plain text a Static widget currently shows."""
    return plain_text(widget.content, width)  # type: ignore[arg-type]


def detail_text(detail: TaskDetail, width: int = 120) -> str:
    """Return the plain text of what a detail view currently shows, wrapped at `width` instead of its own."""
    return plain_text(detail.content, width)


def log_text(log: RichLog) -> str:
    """Return every line the log pane holds, as plain text."""
    return "\n".join(line.text for line in log.lines)


def shown_ids(app: TrustConsoleApp) -> list[str]:
    """Return the task ids of the table's rows, top to bottom."""
    table = app.task_table
    return [table.coordinate_to_cell_key((row, 0))[0].value for row in range(table.row_count)]


def footer_actions(app: TrustConsoleApp) -> set[str]:
    """Return the actions whose keys the footer shows now: enabled, and not hidden by check_action."""
    return {
        active.binding.action.partition("(")[0]
        for active in app.screen.active_bindings.values()
        if active.binding.show and active.enabled
    }
