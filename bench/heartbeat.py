"""Heartbeat regularity while a long task runs and while the hub replies to polls slowly."""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Callable

from .hubs import heartbeat_times, wait_until
from .results import BenchmarkResult, Figure, Target
from .runs import Workspace, running, wait_for_heartbeat, wait_for_poll, workspace
from .scale import Scale

NAME = "heartbeat"
TITLE = "Heartbeat regularity"

HEARTBEAT_INTERVAL_SECONDS = 5.0
"""HEARTBEAT_INTERVAL_SECONDS default; the target is this plus one second."""

POLL_DELAY_SECONDS = 8.0
"""Seconds the hub delays each poll reply: longer than a heartbeat interval, shorter than HTTP_TIMEOUT_SECONDS (10)."""


def largest_gap(times: list[float], start: float, end: float) -> float:
    """Return the largest gap between heartbeats over [start, end], counting the ones just outside it."""
    first = max(bisect.bisect_right(times, start) - 1, 0)
    last = min(bisect.bisect_left(times, end) + 1, len(times))
    window = times[first:last]
    if len(window) < 2:
        return end - start
    return max(later - earlier for earlier, later in zip(window, window[1:]))


def _long_task_runs(runs: int, long_seconds: float) -> list[float]:
    """Run agents side by side, each on its own hub with one long task; return each one's largest gap."""
    with contextlib.ExitStack() as stack:
        spaces: list[Workspace] = [stack.enter_context(workspace()) for _ in range(runs)]
        processes = [stack.enter_context(running(space.start_headless())) for space in spaces]
        for space, process in zip(spaces, processes):
            wait_for_heartbeat(space, process)
            wait_for_poll(space, process)
        tasks = [space.hub.store.enqueue("sleep", {"seconds": long_seconds}) for space in spaces]

        def all_reported() -> bool:
            return all(space.hub.store.records.count_requests("result", 200) for space in spaces)

        wait_until(all_reported, long_seconds + 2 * HEARTBEAT_INTERVAL_SECONDS + 10)
        # One more heartbeat after the result closes the window.
        time.sleep(HEARTBEAT_INTERVAL_SECONDS + 1)

        gaps = []
        for space, task in zip(spaces, tasks):
            stored = space.hub.store.task(task.id)
            results = [record for record in space.hub.store.records.results() if record.status == 200]
            if stored is None or stored.handed_out_at is None or not results:
                raise space.fail("the long task was not handed out and reported")
            gaps.append(largest_gap(heartbeat_times(space.hub), stored.handed_out_at.timestamp(), results[0].time.timestamp()))
        return gaps


def _slow_poll_runs(runs: int, window_seconds: float) -> tuple[list[float], list[int]]:
    """Run agents side by side while their hubs delay every poll; return the largest gaps and the polls sent."""
    with contextlib.ExitStack() as stack:
        spaces: list[Workspace] = [stack.enter_context(workspace()) for _ in range(runs)]
        processes = [stack.enter_context(running(space.start_headless())) for space in spaces]
        for space, process in zip(spaces, processes):
            wait_for_heartbeat(space, process)
            wait_for_poll(space, process)
        started = time.time()
        polls_before = [space.hub.store.records.count_requests("pending") for space in spaces]
        for space in spaces:
            space.hub.faults.set_delay("pending", POLL_DELAY_SECONDS)
        time.sleep(window_seconds)
        ended = time.time()
        # Polls still held end before the hubs stop, which would otherwise cancel them and log errors.
        for space in spaces:
            space.hub.faults.clear()
        time.sleep(max(HEARTBEAT_INTERVAL_SECONDS + 1, POLL_DELAY_SECONDS))
        gaps = [largest_gap(heartbeat_times(space.hub), started, ended) for space in spaces]
        slow_polls = [
            space.hub.store.records.count_requests("pending") - before for space, before in zip(spaces, polls_before)
        ]
        return gaps, slow_polls


def _poll_count_text(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low} polls" if low == high else f"{low} to {high} polls"


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    long_gaps = _long_task_runs(scale.runs, scale.long_task_seconds)
    progress("long task: largest gaps " + ", ".join(f"{gap:.2f} s" for gap in long_gaps))
    slow_gaps, slow_polls = _slow_poll_runs(scale.runs, scale.slow_poll_window_seconds)
    progress("slow polls: largest gaps " + ", ".join(f"{gap:.2f} s" for gap in slow_gaps))

    target = Target("<=", HEARTBEAT_INTERVAL_SECONDS + 1, f"at most {HEARTBEAT_INTERVAL_SECONDS + 1:g} s (interval + 1 s)")
    method = f"""\
`trust-console --headless` runs on default settings
(`HEARTBEAT_INTERVAL_SECONDS={HEARTBEAT_INTERVAL_SECONDS:g}`, `POLL_INTERVAL_SECONDS=5`). Each figure is
the largest gap between two heartbeats the hub accepted, over the window,
counting the heartbeats just before and after it. The {scale.runs} runs of each
condition run side by side, each agent with its own hub and STATE_DIR; the
agents are idle apart from their timers, so they hardly compete for the two
cores.

- **Long task**: one `sleep` task of {scale.long_task_seconds:g} s; the window runs from its
  hand-out to its accepted result.
- **Slow polls**: the hub holds every poll for {POLL_DELAY_SECONDS:g} s
  (`faults.set_delay("pending", {POLL_DELAY_SECONDS:g})`), longer than a heartbeat interval; the
  window is {scale.slow_poll_window_seconds:g} s, in which each agent sent {_poll_count_text(slow_polls)}."""

    figures = [
        Figure(
            f"largest gap, {scale.long_task_seconds:g} s task running",
            long_gaps,
            "s",
            target,
            digits=2,
            note=f"largest of all runs {max(long_gaps):.2f} s",
        ),
        Figure(
            f"largest gap, polls held {POLL_DELAY_SECONDS:g} s",
            slow_gaps,
            "s",
            target,
            digits=2,
            note=f"largest of all runs {max(slow_gaps):.2f} s",
        ),
    ]
    return BenchmarkResult(NAME, TITLE, method, figures)
