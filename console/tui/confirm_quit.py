"""The modal that requests confirmation before quitting while tasks are still in flight."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmQuitScreen(ModalScreen[bool]):
    """Ask whether to quit; dismisses with True to quit, False to keep running."""

    BINDINGS = [
        Binding("y", "answer(True)", "Quit", id="confirm-quit.yes"),
        Binding("n,escape", "answer(False)", "Keep running", id="confirm-quit.no"),
    ]

    def __init__(self, in_flight: int) -> None:
        super().__init__()
        self.in_flight = in_flight

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-quit-dialog"):
            yield Static("Quit trust-console?", id="confirm-quit-title")
            yield Static(
                f"{self.in_flight} task(s) are still in flight. Quitting now cancels their handlers and drops"
                " any result not yet reported. The hub hands such tasks out again only after its stale-task"
                " recovery, which waits 30 minutes.",
                id="confirm-quit-message",
                markup=False,
            )
            with Horizontal(id="confirm-quit-buttons"):
                yield Button("Quit (y)", variant="error", id="quit")
                yield Button("Keep running (n)", variant="primary", id="keep-running")

    def on_mount(self) -> None:
        self.query_one("#keep-running", Button).focus()

    def action_answer(self, quit_now: bool) -> None:
        self.dismiss(quit_now)

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#keep-running")
    def _keep_running(self) -> None:
        self.dismiss(False)
