"""The header: who this trust is, which hub it talks to, and whether that works right now."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from console.agent import Agent
from console.events import Connectivity

from .formatting import format_age, format_duration
from .text import literal

BADGE_CLASSES = {state: "-" + state.value.replace(" ", "-") for state in Connectivity}


def identity_text(agent: Agent, title: str) -> Text:
    """Return the header's first line: the console's title, the trust's name and id, and the hub URL."""
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
    return text


def timing_text(agent: Agent, now: datetime) -> Text:
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
    if agent.stopped:
        text.append("polling stopped")
    elif agent.paused:
        text.append("polling paused", style="bold yellow")
    elif agent.next_poll_at is None:
        text.append("next poll when a handler slot is free")
    else:
        wait = max((agent.next_poll_at - now).total_seconds(), 0.0)
        text.append(f"next poll in {wait:.0f} s")

    text.append("  ·  ", style="dim")
    text.append(f"{agent.in_flight} in flight, {len(agent.tasks)} received")
    return text


def auth_banner_text(agent: Agent) -> Text:
    header = agent.settings.trust_api_key_header
    return Text.assemble(
        ("The hub rejected this trust's API key. ", "bold"),
        "Check TRUST_API_KEY and TRUST_API_KEY_HEADER (now ",
        literal(repr(header)),
        f"), then restart trust-console. Until then the agent retries every {agent.settings.auth_retry_seconds:g} s.",
    )


class StatusHeader(Widget):
    """The trust's identity, the hub URL, connectivity and paused badges, and heartbeat timing."""

    def __init__(self, agent: Agent, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.agent = agent
        self.console_title = title

    def compose(self) -> ComposeResult:
        with Horizontal(id="header-top"):
            yield Static(id="identity")
            yield Static("PAUSED", id="paused-badge")
            yield Static(id="connectivity-badge")
        yield Static(id="timing")
        yield Static(id="auth-banner")

    def on_mount(self) -> None:
        self.show_status(datetime.now().astimezone())

    def show_status(self, now: datetime) -> None:
        """Redraw every part of the header from the agent's current state."""
        agent = self.agent
        self.query_one("#identity", Static).update(identity_text(agent, self.console_title))
        self.query_one("#timing", Static).update(timing_text(agent, now))

        badge = self.query_one("#connectivity-badge", Static)
        badge.update(str(agent.connectivity).upper())
        for state, css_class in BADGE_CLASSES.items():
            badge.set_class(state is agent.connectivity, css_class)

        self.query_one("#paused-badge", Static).display = agent.paused

        banner = self.query_one("#auth-banner", Static)
        auth_failed = agent.connectivity is Connectivity.AUTH_FAILED
        if auth_failed:
            banner.update(auth_banner_text(agent))
        banner.display = auth_failed
