"""Save SVG screenshots of the console, driven by a real agent and an embedded hub on 127.0.0.1.

Usage: .venv/bin/python scripts/make_screenshots.py [--out DIR]

The console runs headless at 140x40. The script feeds the hub a mix of echo,
sleep and fail tasks and makes the hub fail some result reports. It saves one
screenshot per view: the main screen, a failed task's details, a report being
retried, the help screen, the filter, the connectivity view, paused polling,
the quit confirmation, a rejected API key and an identity mismatch.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.agent import Agent
from console.hub import DEMO_TRUST_ID, DEMO_TRUST_NAME, EmbeddedHub, RateLimits
from console.records import TaskState
from console.settings import Settings
from console.tui import TrustConsoleApp
from console.tui.app import FLUSH_INTERVAL_SECONDS
from console.tui.confirm_quit import ConfirmQuitScreen
from console.tui.connectivity_screen import ConnectivityScreen
from console.tui.detail_screen import TaskDetailScreen
from console.tui.help_screen import HelpScreen
from console.tui.identity_mismatch import IdentityMismatchScreen

SIZE = (140, 40)
API_KEY = "screenshot-key-4f1d2a9c8b7e"
OTHER_TRUST_ID = "3f0d9c1e-2b4a-4c6d-8e7f-9a0b1c2d3e4f"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "screenshots"

SETTLE_SECONDS = FLUSH_INTERVAL_SECONDS + 0.15
"""Time given to the console to apply its queued updates before a screenshot."""

BATCH: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"message": "hello from the hub"}),
    ("sleep", {"seconds": 1.5}),
    ("echo", {"query_id": "q-104", "rows": 3}),
    ("sleep", {"seconds": 90}),
    ("fail", {"message": "data-access-api timed out after 300 s"}),
    ("echo", {"message": "short tasks run beside long ones"}),
    ("sleep", {"seconds": 0.5}),
]


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds; raise TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting until {what}")
        await pilot.pause(0.05)


async def shoot(pilot: Pilot[Any], out: Path, name: str) -> None:
    await pilot.pause(SETTLE_SECONDS)
    path = pilot.app.save_screenshot(f"{name}.svg", path=str(out))
    print(f"saved {path}")


def make_settings(hub: EmbeddedHub, state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "central_hub_api_url": hub.api_url,
        "trust_api_key": API_KEY,
        "expected_trust_id": DEMO_TRUST_ID,
        "poll_interval_seconds": 1.0,
        "heartbeat_interval_seconds": 1.0,
        "poll_burst_interval_seconds": 0.2,
        "auth_retry_seconds": 30.0,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def start_hub() -> EmbeddedHub:
    hub = EmbeddedHub(api_key=API_KEY, trust_name=DEMO_TRUST_NAME, trust_id=DEMO_TRUST_ID, rate_limits=RateLimits.off())
    return hub.start()


async def select_task(pilot: Pilot[Any], app: TrustConsoleApp, task_id: str) -> None:
    app.task_table.move_cursor(row=app.task_table.get_row_index(task_id))
    await wait_until(pilot, lambda: app.detail.task_id == task_id, f"the detail pane shows task {task_id}")


async def shoot_working_console(out: Path, state_dir: Path) -> None:
    """Save the main, details, report-retrying, help, filter, connectivity, paused and confirm-quit screenshots."""
    hub = start_hub()
    try:
        app = TrustConsoleApp(Agent(make_settings(hub, state_dir)), keymap={})
        tasks = app.agent.tasks
        async with app.run_test(size=SIZE) as pilot:
            # The failed task goes first, alone, so that the two 503 replies hit its report.
            failed = hub.store.enqueue("fail", {"message": "imaging-api returned 503 Service Unavailable"})
            hub.faults.fail_next("result", 503, count=2)
            await wait_until(
                pilot,
                lambda: failed.id in tasks and tasks[failed.id].state is TaskState.DONE,
                "the failed task is reported after two failed attempts",
            )

            batch = [hub.store.enqueue(task_type, payload) for task_type, payload in BATCH]
            long_running = batch[3]
            await wait_until(
                pilot,
                lambda: all(task.id in tasks and tasks[task.id].state is TaskState.DONE for task in batch if task is not long_running),
                "the short tasks are done",
            )

            hub.faults.fail_next("result", 500, count=1000)
            retrying = hub.store.enqueue("echo", {"message": "its report keeps failing"})
            await wait_until(
                pilot,
                lambda: retrying.id in tasks and len(tasks[retrying.id].report_attempts) >= 2,
                "the retrying task's report has failed twice",
            )

            await select_task(pilot, app, batch[0].id)
            await shoot(pilot, out, "main")

            await select_task(pilot, app, failed.id)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "the details screen shows")
            await shoot(pilot, out, "details")
            await pilot.press("escape")

            await select_task(pilot, app, retrying.id)
            await wait_until(pilot, lambda: app.check_action("retry_report", ()) is True, "the retry key is enabled")
            await shoot(pilot, out, "report-retrying")

            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen shows")
            await shoot(pilot, out, "help")
            await pilot.press("escape")

            app.filter_input.cursor_blink = False
            await pilot.press("slash")
            await pilot.press(*"echo")
            await wait_until(pilot, lambda: "filter 'echo'" in app.table_title.plain, "the filter applies")
            await shoot(pilot, out, "filter")
            await pilot.press("escape")

            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConnectivityScreen), "the connectivity view shows")
            await shoot(pilot, out, "connectivity")
            await pilot.press("escape")

            await pilot.press("p")
            await wait_until(pilot, lambda: app.header.query_one("#paused-badge").display, "the paused badge shows")
            await shoot(pilot, out, "paused")

            await pilot.press("q")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), "the quit confirmation shows")
            await shoot(pilot, out, "confirm-quit")

            await pilot.press("y")
            await wait_until(pilot, lambda: app.return_code is not None, "the console quits")
    finally:
        hub.stop()


async def shoot_auth_failed(out: Path, state_dir: Path) -> None:
    hub = start_hub()
    try:
        app = TrustConsoleApp(Agent(make_settings(hub, state_dir, trust_api_key="a-key-the-hub-does-not-know")), keymap={})
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.header.query_one("#auth-banner").display, "the auth banner shows")
            await shoot(pilot, out, "auth-failed")
    finally:
        hub.stop()


async def shoot_identity_mismatch(out: Path, state_dir: Path) -> None:
    hub = start_hub()
    try:
        hub.store.enqueue("echo", {"message": "never run under the wrong identity"})
        app = TrustConsoleApp(Agent(make_settings(hub, state_dir, expected_trust_id=OTHER_TRUST_ID)), keymap={})
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, IdentityMismatchScreen), "the mismatch screen shows")
            await shoot(pilot, out, "identity-mismatch")
    finally:
        hub.stop()


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # Views that no longer exist must not linger: every SVG here comes from this run.
    for old_svg in out.glob("*.svg"):
        old_svg.unlink()
    # Each agent gets its own state directory, so none resumes the tasks another left unfinished.
    for shoot_view in (shoot_working_console, shoot_auth_failed, shoot_identity_mismatch):
        with tempfile.TemporaryDirectory(prefix="trust-console-screenshots-") as state_dir:
            await shoot_view(out, Path(state_dir))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Directory for the SVG files (default {DEFAULT_OUT}).")
    arguments = parser.parse_args()
    try:
        asyncio.run(main(arguments.out))
    except TimeoutError as error:
        print(f"make_screenshots: {error}", file=sys.stderr)
        sys.exit(1)
