"""The help screen that `?` opens: every key, as remapped, and what the counters count."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HelpSection = tuple[str, list[tuple[str, str, str]]]
"""A titled list of (keys, what they do, binding id to remap them)."""

COUNTER_NOTES = (
    "Counters: stuck tasks are counted under awaiting report too, and failed counts every task whose"
    " handler failed, delivered or not. Choosing a counter again shows all tasks."
)

REMAP_NOTE = (
    "Remap a key with TRUST_CONSOLE_KEYMAP, binding ids to keys, such as"
    " TRUST_CONSOLE_KEYMAP='retry-report=ctrl+r,quit=Q'."
)


def render_help(sections: list[HelpSection]) -> Table:
    """Lay out the sections as one table of keys, actions and binding ids."""
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("Key", style="bold cyan", no_wrap=True)
    table.add_column("Action")
    table.add_column("Binding id", style="dim", no_wrap=True)
    for title, rows in sections:
        table.add_row(Text(title, style="bold underline"), "", "")
        for keys, description, binding_id in rows:
            table.add_row(keys, description, binding_id)
        table.add_row("", "", "")
    return table


class HelpScreen(ModalScreen[None]):
    """A list of every key; `esc`, `?` or `q` closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close help", id="help.close")]

    def __init__(self, sections: list[HelpSection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static("trust-console keys", id="help-title")
            yield Static(render_help(self.sections), id="help-keys")
            yield Static(COUNTER_NOTES, classes="help-note", markup=False)
            yield Static(REMAP_NOTE, classes="help-note", markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-dialog").border_title = "Help"
        self.query_one("#help-dialog").border_subtitle = "esc closes"

    def action_close(self) -> None:
        self.dismiss()
