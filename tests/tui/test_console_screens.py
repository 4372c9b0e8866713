"""The header, the auth banner and the identity-mismatch screen."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

from textual.widgets import Static

from console.agent import Agent
from console.events import Connectivity
from console.hub import HUB_VERSION, EmbeddedHub, RateLimits, TaskStatus
from console.records import TaskState
from console.tui.connectivity_stats import StatusClass
from console.tui import TrustConsoleApp
from console.tui.identity_mismatch import IdentityMismatchScreen

from tui_support import API_KEY, SIZE, TRUST_NAME, MakeApp, eventually, fast_settings, static_text

CONSOLE_PACKAGE = Path(__file__).resolve().parents[2] / "console"


async def test_header_shows_identity_and_heartbeat(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        identity = app.query_one("#identity", Static)
        timing = app.query_one("#timing", Static)
        badge = app.query_one("#connectivity-badge", Static)
        identified = await eventually(pilot, lambda: TRUST_NAME in static_text(identity, width=200))

        assert identified
        assert hub.trust is not None
        assert hub.trust.trust_id in static_text(identity, width=200)
        assert hub.api_url in static_text(identity, width=200)
        assert await eventually(pilot, lambda: static_text(badge).strip() == "ONLINE")
        assert badge.has_class("-online")
        assert await eventually(pilot, lambda: "last heartbeat" in static_text(timing, width=200))
        assert re.search(r"round trip \d+ ms", static_text(timing, width=200))


async def test_auth_failure_shows_banner(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app(trust_api_key="not-the-key-the-hub-knows")

    async with app.run_test(size=SIZE) as pilot:
        banner = app.query_one("#auth-banner", Static)
        badge = app.query_one("#connectivity-badge", Static)
        assert not banner.display

        banner_shown = await eventually(pilot, lambda: banner.display)

        assert banner_shown
        assert app.agent.connectivity is Connectivity.AUTH_FAILED
        assert "TRUST_API_KEY and TRUST_API_KEY_HEADER" in static_text(banner, width=300)
        assert "'X-Trust-API-Key'" in static_text(banner, width=300)
        assert f"CENTRAL_HUB_API_URL ({hub.api_url})" in static_text(banner, width=300)
        assert static_text(badge).strip() == "AUTH FAILED"


async def test_identity_mismatch_blocks_console(hub: EmbeddedHub, make_app: MakeApp) -> None:
    expected = str(uuid.uuid4())
    task = hub.store.enqueue("echo", {})
    app = make_app(expected_trust_id=expected)

    async with app.run_test(size=SIZE) as pilot:
        blocked = await eventually(pilot, lambda: isinstance(app.screen, IdentityMismatchScreen))
        assert blocked
        message = static_text(app.screen.query_one("#mismatch-message", Static), width=200)

        assert expected in message
        assert hub.trust is not None
        assert hub.trust.trust_id in message
        assert "agent stopped" in message
        assert app.agent.stopped
        assert hub.store.task(task.id).status is TaskStatus.PENDING

        for key in ("p", "r", "f", "h", "x", "R", "question_mark", "slash", "escape"):
            await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, IdentityMismatchScreen)
        assert not app.agent.paused
        assert app.check_action("toggle_pause", ()) is False

        await pilot.press("q")
        quit_now = await eventually(pilot, lambda: app.return_code is not None)

        assert quit_now
        assert app.return_code == 2


async def test_header_shows_rate_limited_until(hub: EmbeddedHub, make_app: MakeApp) -> None:
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        notice = app.query_one("#notice", Static)
        assert await eventually(pilot, lambda: app.agent.connectivity is Connectivity.ONLINE)
        assert not notice.display

        hub.faults.fail_next("heartbeat", 429, retry_after=30)
        shown = await eventually(pilot, lambda: notice.display)

        assert shown
        assert re.search(r"Rate limited by the hub until \d\d:\d\d:\d\d \((29|30) s from now\)",
                         static_text(notice, width=200))
        assert app.stats.counts["heartbeat"][StatusClass.RATE_LIMITED] == 1


async def test_header_keeps_last_state_when_hub_stops(hub: EmbeddedHub, make_app: MakeApp) -> None:
    task = hub.store.enqueue("echo", {})
    app = make_app()

    async with app.run_test(size=SIZE) as pilot:
        agent = app.agent
        notice = app.query_one("#notice", Static)
        timing = app.query_one("#timing", Static)
        assert await eventually(pilot, lambda: task.id in agent.tasks and agent.tasks[task.id].state is TaskState.DONE)

        hub.stop()
        offline = await eventually(pilot, lambda: agent.connectivity is Connectivity.OFFLINE)
        assert offline
        assert await eventually(pilot, lambda: "showing last known state" in static_text(notice, width=200))
        assert app.task_table.get_cell(task.id, "state").plain == "done"

        first_age = heartbeat_age(static_text(timing, width=200))
        grew = await eventually(pilot, lambda: heartbeat_age(static_text(timing, width=200)) > first_age, timeout=3.0)

        assert grew
        assert static_text(app.query_one("#connectivity-badge", Static)).strip() == "OFFLINE"


def heartbeat_age(timing: str) -> int:
    """Return the seconds of "last heartbeat Ns ago" in the header's timing line."""
    match = re.search(r"last heartbeat (\d+)s ago", timing)
    assert match is not None, timing
    return int(match.group(1))


def test_only_console_tui_imports_textual() -> None:
    importers = [
        path.relative_to(CONSOLE_PACKAGE).as_posix()
        for path in CONSOLE_PACKAGE.rglob("*.py")
        if "tui" not in path.relative_to(CONSOLE_PACKAGE).parts
        and re.search(r"^\s*(from|import)\s+textual\b", path.read_text(), re.MULTILINE)
    ]

    assert importers == []


async def test_key_banner_warns_of_other_aes_key(tmp_path: Path) -> None:
    hub_key = base64.b64encode(bytes(range(32))).decode()
    with EmbeddedHub(api_key=API_KEY, trust_name=TRUST_NAME, aes_key_base64=hub_key, rate_limits=RateLimits.off()) as hub:
        agent = Agent(fast_settings(hub, tmp_path), local_key_fingerprint="000000000000")
        app = TrustConsoleApp(agent)

        async with app.run_test(size=SIZE) as pilot:
            banner = app.query_one("#key-banner", Static)
            identity = app.query_one("#identity", Static)
            banner_shown = await eventually(pilot, lambda: banner.display)

            assert banner_shown
            assert agent.hub_key_fingerprint is not None
            assert agent.hub_key_fingerprint in static_text(banner, width=300)
            assert "000000000000" in static_text(banner, width=300)
            assert "AES_KEY_BASE64" in static_text(banner, width=300)
            assert f"version {HUB_VERSION}" in static_text(identity, width=300)

            await pilot.press("q")
            assert await eventually(pilot, lambda: app.return_code is not None)
