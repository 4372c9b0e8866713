"""The header: who this trust is, which hub it talks to, and whether that works right now."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from console.agent import Agent
from console.events import Connectivity, utc_now
from console.records import TaskState

from .connectivity_stats import ConnectivityStats
from .formatting import format_age, format_clock, format_duration
from .text import literal, needs_layout

BADGE_CLASSES = {state: "-" + state.value.replace(" ", "-") for state in Connectivity}


def identity_text(agent: Agent, title: str) -> Text:
    """Return the header's first line: the console's title, the trust's name and id, the hub URL and version."""
    text = Text(title, style="bold")
    text.append("  ")
    if agent.identity is None:
        text.append("trust not yet identified by the hub", style="italic")
    else:
        text.append_text(literal(agent.identity.trust_name or "unnamed trust", style="bold", max_chars=60))
        text.append(" (")
        text.append_text(literal(agent.identity.trust_id, max_chars=40))
        text.append(")")
    text.append("  hub ", style="dim")
    text.append_text(literal(agent.settings.central_hub_api_url, max_chars=80))
    if agent.hub_version is not None:
        text.append(" version ", style="dim")
        text.append_text(literal(agent.hub_version, max_chars=20))
    return text


def timing_text(agent: Agent, now: datetime, draining: bool = False) -> Text:
    """Return the header's second line: heartbeat age and round trip, next poll, tasks in flight."""
    text = Text()
    if agent.last_heartbeat_at is None:
        text.append("no heartbeat accepted yet", style="italic")
    else:
        age = format_age((now - agent.last_heartbeat_at).total_seconds())
        text.append(f"last heartbeat {age} ago")
        if agent.last_round_trip_seconds is not None:
            text.append(f", round trip {format_duration(agent.last_round_trip_seconds)}")

    text.append("  ·  ", style="dim")
    text.append_text(poll_text(agent, now, draining))

    text.append("  ·  ", style="dim")
    text.append(f"{agent.in_flight} in flight")
    return text


def notice_text(agent: Agent, stats: ConnectivityStats, now: datetime) -> Text | None:
    """Say when the hub rate limits this trust or stopped replying; None while neither is the case."""
    text = Text()
    remaining = stats.rate_limit_remaining(now)
    if remaining is not None and stats.rate_limited_until is not None:
        text.append(
            f"Rate limited by the hub until {format_clock(stats.rate_limited_until)} ({remaining:.0f} s from now)",
            style="bold yellow",
        )
    if agent.connectivity is Connectivity.OFFLINE:
        if text:
            text.append("  ·  ", style="dim")
        text.append("Hub not answering: showing last known state", style="bold red")
        if stats.last_reply_at is not None:
            age = format_age((now - stats.last_reply_at).total_seconds())
            text.append(f"; last reply {age} ago", style="red")
    return text or None


def poll_text(agent: Agent, now: datetime, draining: bool = False) -> Text:
    """Describe when the agent polls next, or why it does not poll."""
    slots = agent.settings.max_concurrent_tasks
    busy = sum(1 for record in agent.tasks.values() if record.state in (TaskState.QUEUED, TaskState.RUNNING))
    if agent.stopped:
        return Text("polling stopped")
    if draining:
        return Text("finishing tasks in flight before quitting; no new tasks", style="bold yellow")
    if agent.paused:
        return Text("polling paused", style="bold yellow")
    if agent.identity is None:
        return Text("polling starts once the hub confirms this trust's identity")
    if busy >= slots:
        return Text(f"all {slots} handler slots busy; next poll when one is free")
    if agent.next_poll_at is None or agent.next_poll_at <= now:
        return Text("polling now")
    wait = (agent.next_poll_at - now).total_seconds()
    return Text(f"next poll in {wait:.0f} s")


def auth_banner_text(agent: Agent) -> Text:
    header = agent.settings.trust_api_key_header
    return Text.assemble(
        ("The hub rejected this trust's API key. ", "bold"),
        "Check TRUST_API_KEY and TRUST_API_KEY_HEADER (now ",
        literal(repr(header)),
        "), and that CENTRAL_HUB_API_URL (",
        literal(agent.settings.central_hub_api_url, max_chars=80),
        ") is this trust's hub; then restart trust-console."
        f" Until then the agent retries every {agent.settings.auth_retry_seconds:g} s.",
    )


def key_banner_text(agent: Agent) -> Text | None:
    """Warn when the hub's AES key fingerprint differs from this trust's; None when they match or are unknown."""
    hub, local = agent.hub_key_fingerprint, agent.local_key_fingerprint
    if not hub or not local or hub == local:
        return None
    return Text.assemble(
        ("The hub holds a different AES key. ", "bold"),
        "Its fingerprint is ",
        literal(hub, max_chars=20),
        " and this trust's is ",
        literal(local, max_chars=20),
        ", so encrypted payloads will fail to decrypt. Check AES_KEY_BASE64.",
    )


def _update(static: Static, text: Text) -> None:
    """Replace a Static's text only when it differs, so an unchanged header costs no redraw."""
    shown = static.content
    if isinstance(shown, Text) and shown.plain == text.plain and shown.spans == text.spans and shown.style == text.style:
        return
    static.update(text, layout=needs_layout(static, text))


class StatusHeader(Widget):
    """The trust's identity, the hub URL, connectivity and paused badges, and heartbeat timing."""

    def __init__(self, agent: Agent, title: str, stats: ConnectivityStats, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="status-header")
        self.agent = agent
        self.console_title = title
        self.stats = stats
        self.draining = False
        """Set by the app once the agent stops claiming tasks to finish the ones in flight."""

        # Kept by reference, so a redraw during shutdown finds them after they leave the DOM.
        self.identity = Static(id="identity")
        self.paused_badge = Static("PAUSED", id="paused-badge")
        self.connectivity_badge = Static(id="connectivity-badge")
        self.timing = Static(id="timing")
        self.notice = Static(id="notice")
        self.auth_banner = Static(id="auth-banner", classes="banner")
        self.key_banner = Static(id="key-banner", classes="banner")

    def compose(self) -> ComposeResult:
        with Horizontal(id="header-top"):
            yield self.identity
            yield self.paused_badge
            yield self.connectivity_badge
        yield self.timing
        yield self.notice
        yield self.auth_banner
        yield self.key_banner

    def on_mount(self) -> None:
        self.show_status(getattr(self.app, "clock", utc_now)())

    def show_status(self, now: datetime) -> None:
        """Redraw every part of the header from the agent's current state."""
        agent = self.agent
        _update(self.identity, identity_text(agent, self.console_title))
        _update(self.timing, timing_text(agent, now, self.draining))
        notice = notice_text(agent, self.stats, now)
        if notice is not None:
            _update(self.notice, notice)
        self.notice.display = notice is not None

        badge = self.connectivity_badge
        _update(badge, Text(str(agent.connectivity).upper()))
        for state, css_class in BADGE_CLASSES.items():
            badge.set_class(state is agent.connectivity, css_class)

        self.paused_badge.display = agent.paused

        auth_failed = agent.connectivity is Connectivity.AUTH_FAILED
        if auth_failed:
            _update(self.auth_banner, auth_banner_text(agent))
        self.auth_banner.display = auth_failed

        key_warning = key_banner_text(agent)
        if key_warning is not None:
            _update(self.key_banner, key_warning)
        self.key_banner.display = key_warning is not None
