"""The row of per-state counters above the task table; choosing one filters the table to its tasks."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

from .task_view import TaskCategory
from .text import needs_layout

CATEGORY_STYLES = {
    TaskCategory.QUEUED: "blue",
    TaskCategory.RUNNING: "cyan",
    TaskCategory.AWAITING_REPORT: "yellow",
    TaskCategory.STUCK: "red",
    TaskCategory.REJECTED: "magenta",
    TaskCategory.FAILED: "red",
    TaskCategory.DONE: "green",
}


class CategoryChosen(Message):
    """The operator chose a counter; None means all tasks."""

    def __init__(self, category: TaskCategory | None) -> None:
        super().__init__()
        self.category = category


class Counter(Static):
    """One counter: its key, its category and how many tasks are in it."""

    def __init__(self, category: TaskCategory | None, key: str) -> None:
        name = "all" if category is None else category.value.replace(" ", "-")
        super().__init__(id=f"counter-{name}", classes="counter")
        self.category = category
        self.key = key
        self.count: int | None = None

    def show_count(self, count: int) -> None:
        if count == self.count:
            return
        self.count = count
        label = "all" if self.category is None else self.category.value
        text = Text.assemble((f" {self.key} ", "bold reverse"), " ", label, " ")
        style = "bold" if self.category is None else f"bold {CATEGORY_STYLES[self.category]}"
        text.append(f"{count:,}", style=style if count else "dim")
        self.update(text, layout=needs_layout(self, text))

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(CategoryChosen(self.category))


class StateCounters(Horizontal):
    """Counters for all tasks and for each category, the chosen one highlighted."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.counters = [Counter(None, "0"), *(Counter(category, category.key) for category in TaskCategory)]

    def compose(self) -> ComposeResult:
        yield from self.counters

    def show(self, total: int, counts: dict[TaskCategory, int], chosen: TaskCategory | None) -> None:
        """Update every count and highlight the chosen counter."""
        for counter in self.counters:
            counter.show_count(total if counter.category is None else counts[counter.category])
            counter.set_class(counter.category is chosen, "-chosen")
