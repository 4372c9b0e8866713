"""Snapshots of the console's screens at 140x40, with the clock frozen and the cursor blink off.

Update them after an intended change with `pytest tests/tui/test_console_snapshots.py --snapshot-update`,
then look at the SVG files under `__snapshots__` before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.events import Connectivity
from console.tui import TrustConsoleApp

from snapshot_support import SIZE, frozen_app, publish_log_events, task_id


@pytest.fixture(autouse=True)
def utc_clock_times(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Format every time of day in UTC, as the snapshots were taken."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def settle(pilot: Pilot[Any]) -> None:
    """Apply the fixed events and every queued change, so nothing depends on when a timer fires."""
    app = pilot.app
    assert isinstance(app, TrustConsoleApp)
    app.filter_input.cursor_blink = False
    # The log pane wraps lines to its width, which is set only by the first layout.
    await pilot.pause()
    publish_log_events(app)
    await pilot.pause()
    app._flush_updates()
    await pilot.pause()


def test_main_screen_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(frozen_app(tmp_path), terminal_size=SIZE, run_before=settle)


def test_paused_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(frozen_app(tmp_path, paused=True), terminal_size=SIZE, run_before=settle)


def test_details_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    async def open_stuck_task(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        assert pilot.app.task_table.select_task(task_id(3))
        await pilot.press("enter")
        pilot.app._flush_updates()

    assert snap_compare(frozen_app(tmp_path), terminal_size=SIZE, run_before=open_stuck_task)


def test_help_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(frozen_app(tmp_path), terminal_size=SIZE, run_before=open_help)


def test_filter_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    async def filter_echo(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("slash", *"echo")
        pilot.app._flush_updates()

    assert snap_compare(frozen_app(tmp_path), terminal_size=SIZE, run_before=filter_echo)


def test_auth_failed_snapshot(snap_compare: Any, tmp_path: Path) -> None:
    app = frozen_app(tmp_path, connectivity=Connectivity.AUTH_FAILED)

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
