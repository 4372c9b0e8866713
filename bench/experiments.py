"""`python -m bench.experiments`: measure changes the agent and the console could make, before making them.

This is diagnosis, not a benchmark, and `python -m bench` does not run it.

- drain: trust-console drains `echo` tasks as built and with each patch of
  `bench.patched_agent`, and the bare loop drains them in the same round.
  Each variant's figure is the median over the rounds of its rate divided by
  the bare loop's.
- console: the console-at-scale measurement runs as built and with the task
  table asking the DataTable to recompute a column's width only when a new
  cell is wider than the column. Textual (8.2) re-measures every cell of the
  column whenever an updated cell is narrower than the column, so each
  narrower cell costs a pass over every row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from .drain import AGENT_SETTINGS, RUN_LIMIT_SECONDS, DrainRun, measure_rate, run_loop
from .hubs import accepted_results, wait_until
from .results import median, percentile
from .runs import ECHO_PAYLOAD, running, workspace
from .scale import QUICK

DRAIN_VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("as built", "", {}),
    ("async library answered at once", "async-library", {}),
    ("ledger commits grouped, still FULL", "ledger-grouped", {}),
    ("ledger synchronous=NORMAL", "ledger-normal", {}),
    ("2 reports at once", "bounded-reports", {}),
    ("WARNING logs instead of INFO", "", {"LOG_LEVEL": "WARNING"}),
    ("async library + grouped + 2 reports", "async-library,ledger-grouped,bounded-reports", {}),
    ("async library + NORMAL + 2 reports", "async-library,ledger-normal,bounded-reports", {}),
    ("ledger writes skipped (a bound, not a proposal)", "ledger-off", {}),
]
"""Label, patches of bench.patched_agent, and settings for each variant; reports at once default to 2."""


def drain_patched(tasks: int, patches: str, settings: dict[str, Any]) -> DrainRun:
    with workspace() as space:
        space.hub.store.enqueue_many("echo", ECHO_PAYLOAD, tasks)
        process = space.start_module("bench.patched_agent", patches, **{**AGENT_SETTINGS, **settings})
        with running(process):
            wait_until(lambda: accepted_results(space.hub) >= tasks or process.poll() is not None, RUN_LIMIT_SECONDS)
        if accepted_results(space.hub) < tasks:
            raise space.fail(f"the patched agent ({patches or 'no patch'}) delivered too few results")
        return measure_rate(space, patches or "as built", tasks, whole_cycles=False)


def run_drain(tasks: int, rounds: int) -> None:
    ratios: dict[str, list[float]] = {label: [] for label, _, _ in DRAIN_VARIANTS}
    rates: dict[str, list[float]] = {label: [] for label, _, _ in DRAIN_VARIANTS}
    bare_rates = []
    for number in range(rounds):
        bare = run_loop("bare", tasks, RUN_LIMIT_SECONDS).tasks_per_second
        bare_rates.append(bare)
        for label, patches, settings in DRAIN_VARIANTS:
            rate = drain_patched(tasks, patches, settings).tasks_per_second
            rates[label].append(rate)
            ratios[label].append(rate / bare)
            print(f"  round {number + 1}: {label}: {rate:.0f} tasks/s, {rate / bare:.2f} of the bare loop", flush=True)
    print(f"\nDrain of {tasks:,} echo tasks, median of {rounds} rounds; bare loop {median(bare_rates):.0f} tasks/s")
    for label, _, _ in DRAIN_VARIANTS:
        print(f"  {label:<50} {median(rates[label]):>6.0f} tasks/s   {median(ratios[label]):.2f} of the bare loop")


def _cell_width(value: object) -> int:
    return value.cell_len if isinstance(value, Text) else Text(str(value)).cell_len


@contextlib.contextmanager
def widen_columns_only() -> Iterator[None]:
    """Make the task table pass update_width only for a cell wider than its column, while the block runs."""
    from console.tui.task_table import TaskTable

    def update_cell(
        self: TaskTable, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False
    ) -> None:
        if update_width:
            key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
            column = self.columns.get(key)
            update_width = column is None or _cell_width(value) > column.content_width
        DataTable.update_cell(self, row_key, column_key, value, update_width=update_width)

    TaskTable.update_cell = update_cell  # type: ignore[method-assign]
    try:
        yield
    finally:
        del TaskTable.update_cell


def run_console() -> None:
    from . import console_scale

    scale = replace(QUICK, console_key_presses=10)
    for label, patch in (("as built", contextlib.nullcontext()), ("columns only widen", widen_columns_only())):
        with patch, tempfile.TemporaryDirectory(prefix="trust-console-bench-") as directory:
            measured = asyncio.run(console_scale.measure_console(scale, Path(directory), lambda message: None))
        batches = measured["batches"]

        def batch_median(part: str) -> float:
            return median([batch[part] for batch in batches]) * 1000

        print(
            f"  {label}: batch of 100 {batch_median('total'):,.0f} ms (events {batch_median('events'):,.0f},"
            f" flush {batch_median('flush'):,.0f}, column widths {batch_median('idle_work'):,.0f},"
            f" repaint {batch_median('repaint'):,.0f}); key press {median(measured['presses']) * 1000:,.0f} ms,"
            f" {median(measured['burst_presses']) * 1000:,.0f} ms with 100 rows under a minute old,"
            f" {median(measured['loaded_presses']) * 1000:,.0f} ms with older tasks loaded"
            f" (p95 {percentile(measured['loaded_presses'], 0.95) * 1000:,.0f} ms)",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["drain", "console"], help="Run one experiment.")
    parser.add_argument("--tasks", type=int, default=2000, help="Tasks per drain (default: 2000).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of the drain experiment (default: 3).")
    arguments = parser.parse_args()
    if arguments.only in (None, "drain"):
        run_drain(arguments.tasks, arguments.rounds)
    if arguments.only in (None, "console"):
        print("\nConsole with 10,000 tasks held (quick scale, 10 key presses)")
        run_console()
    return 0


if __name__ == "__main__":
    sys.exit(main())
