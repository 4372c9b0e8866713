"""The connectivity view that `c` opens: heartbeat round trips, replies per endpoint, rate limits."""

from __future__ import annotations

import statistics
from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from console.agent import Agent
from console.events import Connectivity

from .connectivity_stats import ENDPOINTS, ConnectivityStats, StatusClass
from .formatting import format_age, format_clock, format_duration
from .header import StatusHeader

STATUS_STYLES = {
    StatusClass.OK: "green",
    StatusClass.CLIENT_ERROR: "yellow",
    StatusClass.RATE_LIMITED: "yellow",
    StatusClass.SERVER_ERROR: "red",
    StatusClass.NO_REPLY: "red",
}


def round_trip_text(stats: ConnectivityStats) -> Text:
    """Summarise the recent heartbeat round trips: last, median and maximum."""
    samples = list(stats.round_trips)
    if not samples:
        return Text("No heartbeat accepted yet.", style="dim italic")
    return Text(
        f"Heartbeat round trip over the last {len(samples)}: last {format_duration(samples[-1])},"
        f" median {format_duration(statistics.median(samples))}, max {format_duration(max(samples))}"
    )


def counts_table(stats: ConnectivityStats) -> Table:
    """Tabulate the hub's replies per endpoint and status class since the console started."""
    table = Table(box=None, padding=(0, 2), header_style="bold")
    table.add_column("Endpoint")
    for status_class in StatusClass:
        table.add_column(status_class.value, justify="right")
    for endpoint in ENDPOINTS:
        cells = []
        for status_class in StatusClass:
            count = stats.counts[endpoint][status_class]
            cells.append(Text(f"{count:,}", style=STATUS_STYLES[status_class] if count else "dim"))
        table.add_row(endpoint, *cells)
    return table


def state_lines(agent: Agent, stats: ConnectivityStats, now: datetime) -> Text:
    """Describe the rate limit, the last reply and any reply that never came."""
    text = Text()
    remaining = stats.rate_limit_remaining(now)
    if remaining is not None and stats.rate_limited_until is not None:
        text.append(
            f"Rate limited until {format_clock(stats.rate_limited_until)} ({remaining:.0f} s from now)\n",
            style="bold yellow",
        )
    else:
        text.append("Not rate limited.\n", style="dim")
    if stats.last_reply_at is not None:
        text.append(f"Last reply from the hub {format_age((now - stats.last_reply_at).total_seconds())} ago")
        text.append(f" ({format_clock(stats.last_reply_at)}).\n")
    if stats.last_no_reply_at is not None:
        text.append(
            f"Last request without a reply {format_age((now - stats.last_no_reply_at).total_seconds())} ago.\n",
            style="red",
        )
    if agent.connectivity is Connectivity.OFFLINE:
        text.append("The hub is not answering: the console shows the last known state.\n", style="bold red")
    return text


class ConnectivityScreen(Screen[None]):
    """View of the hub's recent replies; `esc` goes back to the table."""

    BINDINGS = [Binding("escape", "back", "Back", id="connectivity.back")]

    def __init__(self, header: StatusHeader, agent: Agent, stats: ConnectivityStats) -> None:
        super().__init__()
        self.header = header
        self.agent = agent
        self.stats = stats
        self.sparkline = Sparkline([], id="round-trips")
        self.summary = Static(id="round-trip-summary")
        self.body = Static(id="connectivity-body")

    def compose(self) -> ComposeResult:
        yield self.header
        with Vertical(id="connectivity-view"):
            yield self.summary
            yield self.sparkline
            yield self.body
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#connectivity-view").border_title = "Connectivity"
        self.show(self.app.clock())  # type: ignore[attr-defined]

    def show(self, now: datetime) -> None:
        """Redraw the view from the stats gathered so far."""
        self.summary.update(round_trip_text(self.stats))
        self.sparkline.data = [seconds * 1000 for seconds in self.stats.round_trips]
        self.body.update(Group(Text(""), counts_table(self.stats), Text(""), state_lines(self.agent, self.stats, now)))

    def action_back(self) -> None:
        self.dismiss()
