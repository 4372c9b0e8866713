"""The modal that requests confirmation before quitting while tasks are still in flight."""

from __future__ import annotations

import enum

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

AFTER_INTERRUPT = (
    "The ledger keeps them: finished results are reported at the next start, and interrupted handlers"
    " run again then (a task interrupted twice is failed). FLIP's hub hands a task out again when no"
    " result arrives within 30 to 40 minutes."
)


class QuitChoice(enum.Enum):
    """The operator's choice in the quit confirmation."""

    QUIT_NOW = "quit now"
    FINISH_FIRST = "finish first"
    KEEP_RUNNING = "keep running"


class ConfirmQuitScreen(ModalScreen[QuitChoice]):
    """Ask whether to quit now, finish the tasks in flight first, or keep running.

    While a drain is already under way, only quitting now and keeping running are offered.
    """

    BINDINGS = [
        Binding("y", "choose('QUIT_NOW')", "Quit now", id="confirm-quit.quit-now"),
        Binding("f", "choose('FINISH_FIRST')", "Finish, then quit", id="confirm-quit.finish-first"),
        Binding("n,escape", "choose('KEEP_RUNNING')", "Keep running", id="confirm-quit.keep-running"),
    ]

    def __init__(self, in_flight: int, *, draining: bool = False) -> None:
        super().__init__()
        self.in_flight = in_flight
        self.draining = draining

    def compose(self) -> ComposeResult:
        if self.draining:
            message = (
                f"The agent is finishing {self.in_flight} task(s) before it quits. Quitting now interrupts"
                f" them. {AFTER_INTERRUPT}"
            )
        else:
            message = (
                f"{self.in_flight} task(s) are still in flight. Quitting now interrupts them. {AFTER_INTERRUPT}"
                " Finishing first claims no new task and quits once every result is reported."
            )

        with Vertical(id="confirm-quit-dialog"):
            yield Static("Quit trust-console?", id="confirm-quit-title")
            yield Static(message, id="confirm-quit-message", markup=False)
            with Horizontal(id="confirm-quit-buttons"):
                yield Button("Quit now (y)", variant="error", id="quit-now")
                if not self.draining:
                    yield Button("Finish, then quit (f)", variant="warning", id="finish-first")
                yield Button("Keep running (n)", variant="primary", id="keep-running")

    def on_mount(self) -> None:
        self.query_one("#keep-running", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose" and parameters == ("FINISH_FIRST",) and self.draining:
            return False
        return True

    def action_choose(self, choice: str) -> None:
        self.dismiss(QuitChoice[choice])

    @on(Button.Pressed, "#quit-now")
    def _quit_now(self) -> None:
        self.dismiss(QuitChoice.QUIT_NOW)

    @on(Button.Pressed, "#finish-first")
    def _finish_first(self) -> None:
        self.dismiss(QuitChoice.FINISH_FIRST)

    @on(Button.Pressed, "#keep-running")
    def _keep_running(self) -> None:
        self.dismiss(QuitChoice.KEEP_RUNNING)
