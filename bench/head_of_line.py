"""Head-of-line blocking: do short tasks wait behind a long one handed out in the same poll?"""

from __future__ import annotations

from collections.abc import Callable

from .hubs import wait_until
from .results import BenchmarkResult, Figure, Target
from .runs import ECHO_PAYLOAD, Workspace, running, wait_for_heartbeat, wait_for_poll, workspace
from .scale import Scale

NAME = "head-of-line"
TITLE = "Head-of-line blocking"

SHORT_TASKS = 20
POLL_INTERVAL_SECONDS = 5.0
"""POLL_INTERVAL_SECONDS default, used by both designs; the target is one poll interval."""

TARGET_LONG_TASK_SECONDS = 60.0


def _enqueue(space: Workspace, long_seconds: float) -> list[str]:
    """Enqueue the long task first, so it is the oldest, then the short ones; return the short ones' ids."""
    store = space.hub.store
    store.enqueue("sleep", {"seconds": long_seconds})
    return [task.id for task in store.enqueue_many("echo", ECHO_PAYLOAD, SHORT_TASKS)]


def _delivery(space: Workspace, short_ids: list[str]) -> float:
    """Return the seconds from the poll that handed the short tasks out to the last of their accepted results."""
    wanted = set(short_ids)
    store = space.hub.store
    accepted = [record.time.timestamp() for record in store.records.results() if record.task_id in wanted and record.status == 200]
    handed_out = [task.handed_out_at.timestamp() for task in store.tasks() if task.id in wanted and task.handed_out_at]
    if len(accepted) < len(wanted) or not handed_out:
        raise space.fail(f"only {len(accepted)} of {len(wanted)} short results were accepted")
    return max(accepted) - min(handed_out)


def _short_results_in(space: Workspace, short_ids: list[str]) -> int:
    wanted = set(short_ids)
    return sum(1 for record in space.hub.store.records.results() if record.task_id in wanted and record.status == 200)


def run_agent(long_seconds: float) -> float:
    with workspace() as space:
        with running(space.start_headless(POLL_INTERVAL_SECONDS=POLL_INTERVAL_SECONDS)) as process:
            wait_for_heartbeat(space, process)
            wait_for_poll(space, process)
            short_ids = _enqueue(space, long_seconds)
            wait_until(lambda: _short_results_in(space, short_ids) >= SHORT_TASKS, 3 * POLL_INTERVAL_SECONDS + 10)
        return _delivery(space, short_ids)


def run_classic(long_seconds: float, cap_seconds: float) -> float | None:
    """Run the classic loop for at most `cap_seconds` after the enqueue; None if the short results are late."""
    with workspace() as space:
        arguments = ["classic", f"--poll-interval={POLL_INTERVAL_SECONDS}", f"--max-seconds={cap_seconds + 30}", "--max-requests=1000"]
        with running(space.start_module("bench.loops", *arguments)) as process:
            wait_for_poll(space, process)
            short_ids = _enqueue(space, long_seconds)
            wait_until(lambda: _short_results_in(space, short_ids) >= SHORT_TASKS, cap_seconds)
        if _short_results_in(space, short_ids) < SHORT_TASKS:
            return None
        return _delivery(space, short_ids)


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    long_seconds = scale.long_task_seconds
    agent_runs = []
    for number in range(scale.runs):
        delivery = run_agent(long_seconds)
        agent_runs.append(delivery)
        progress(f"run {number + 1}: trust-console {delivery * 1000:.0f} ms from hand-out")

    cap = scale.classic_head_of_line_cap_seconds
    classic = run_classic(long_seconds, cap)
    if classic is None:
        progress(f"classic loop: no short result within the {cap:g} s cap")
        classic_figure = Figure("classic loop, hand-out to last short result", [], "s", shown=f"> {cap:g} s (capped)")
    else:
        progress(f"classic loop: {classic:.1f} s from hand-out")
        classic_figure = Figure("classic loop, hand-out to last short result", [classic], "s", note="one run")

    shortened = ""
    if long_seconds != TARGET_LONG_TASK_SECONDS:
        shortened = (
            f" This run shortens the long task to {long_seconds:g} s; the target is stated for"
            f" {TARGET_LONG_TASK_SECONDS:g} s, and trust-console's figure does not depend on it."
        )
    method = f"""\
One `sleep` task of {long_seconds:g} s and {SHORT_TASKS} `echo` tasks are enqueued together, the
long one first, while the client is running and idle, so one poll hands all
of them out. Both designs use `POLL_INTERVAL_SECONDS={POLL_INTERVAL_SECONDS:g}` (the default);
trust-console (`trust-console --headless`) otherwise runs on default settings,
with 4 handler slots. The figure is the time from the poll that handed the
tasks out (the hub's hand-out time) to the last short result the hub
accepted. Counted from the enqueue instead, the figure would add the wait
for that poll, up to one poll interval, for either design. trust-console is stopped once the short results are in, which
cancels the long task. The classic loop (`python -m bench.loops classic`)
runs once, because its figure is the long task's length, and is stopped
{cap:g} s after the enqueue.{shortened}"""

    figures = [
        Figure(
            "trust-console, hand-out to last short result",
            [seconds * 1000 for seconds in agent_runs],
            "ms",
            Target("<", POLL_INTERVAL_SECONDS * 1000, f"within one poll interval ({POLL_INTERVAL_SECONDS:g} s)"),
            digits=0,
        ),
        classic_figure,
    ]
    return BenchmarkResult(NAME, TITLE, method, figures)
