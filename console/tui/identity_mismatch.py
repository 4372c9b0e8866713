"""The screen that blocks the console after the hub named another trust than EXPECTED_TRUST_ID."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.events import IdentityMismatch

from .text import literal


def mismatch_text(event: IdentityMismatch) -> Text:
    """Explain the mismatch with both trust ids and what to check."""
    return Text.assemble(
        ("The agent stopped: this API key belongs to another trust.\n\n", "bold"),
        ("Expected trust id  ", "bold"),
        literal(event.expected_trust_id),
        "  (EXPECTED_TRUST_ID)\n",
        ("Hub's trust id     ", "bold"),
        literal(event.trust_id),
        "  (",
        literal(event.trust_name, max_chars=80),
        ")\n\n",
        "No task was run under the wrong identity. Check that this trust was deployed with its own"
        " TRUST_API_KEY, or correct EXPECTED_TRUST_ID, then start trust-console again.\n\n",
        ("Press q to quit.", "bold"),
    )


class IdentityMismatchScreen(Screen[None]):
    """A screen that replaces the console once the agent has stopped on an identity mismatch.

    The app disables every action except quit while this screen is shown.
    """

    def __init__(self, event: IdentityMismatch) -> None:
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        with Vertical(id="mismatch-dialog"):
            yield Static("Identity mismatch", id="mismatch-title")
            yield Static(mismatch_text(self.event), id="mismatch-message")
        yield Footer()
