"""Delivery latency: from a handler finishing to the hub accepting its result, on a healthy hub."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from .hubs import wait_until
from .results import BenchmarkResult, Figure, Target, median, percentile
from .runs import ECHO_PAYLOAD, running, wait_for_heartbeat, wait_for_poll, workspace
from .scale import Scale

NAME = "delivery"
TITLE = "Delivery latency"

POLL_INTERVAL_SECONDS = 0.25
"""Poll interval and burst interval: short, so the trickle of tasks takes little time; it does not enter the figure."""

PAUSE_SECONDS = 0.1
"""Pause between one task's accepted result and the next enqueue."""


def _run_once(tasks: int) -> list[float]:
    """Trickle `tasks` echo tasks through one agent; return each one's latency in seconds."""
    with workspace() as space:
        events_path = space.directory / "finished.jsonl"
        records = space.hub.store.records
        process = space.start_module(
            "bench.recording_agent",
            str(events_path),
            POLL_INTERVAL_SECONDS=POLL_INTERVAL_SECONDS,
            POLL_BURST_INTERVAL_SECONDS=POLL_INTERVAL_SECONDS,
        )
        with running(process):
            wait_for_heartbeat(space, process)
            wait_for_poll(space, process)
            for number in range(tasks):
                space.hub.store.enqueue("echo", ECHO_PAYLOAD)
                if not wait_until(lambda: records.count_requests("result", 200) > number, 10):
                    raise space.fail(f"task {number + 1} was not reported within 10 s")
                time.sleep(PAUSE_SECONDS)
        finished = {
            event["task_id"]: event["at"] for event in map(json.loads, events_path.read_text().splitlines())
        }
        accepted = {record.task_id: record.time.timestamp() for record in records.results() if record.status == 200}
        missing = set(accepted) - set(finished)
        if missing:
            raise space.fail(f"{len(missing)} accepted results have no TaskFinished event")
        return [accepted[task_id] - finished[task_id] for task_id in accepted]


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    run_medians = []
    every_latency: list[float] = []
    for number in range(scale.runs):
        latencies = _run_once(scale.delivery_tasks_per_run)
        run_medians.append(median(latencies) * 1000)
        every_latency += latencies
        progress(f"run {number + 1}: median {run_medians[-1]:.1f} ms over {len(latencies)} tasks")

    method = f"""\
`trust-console --headless`, started through `python -m bench.recording_agent`,
which adds one event subscriber that keeps each `TaskFinished` event's time in
memory, runs on default settings except `POLL_INTERVAL_SECONDS` and
`POLL_BURST_INTERVAL_SECONDS`, both {POLL_INTERVAL_SECONDS:g}, so the tasks need not wait long for a poll. The hub
is healthy: no fault, no delay, no rate limit. {scale.delivery_tasks_per_run} `echo` tasks are
enqueued one at a time, each after the previous result was accepted and a
{PAUSE_SECONDS * 1000:.0f} ms pause. The latency of a task is the hub's record time of its
accepted result minus the time of the agent's `TaskFinished` event; both
clocks are the same machine's wall clock. The figure is the median of the
runs' medians; p95 and the maximum are over every task of every run."""

    figures = [
        Figure("handler finished to result accepted", run_medians, "ms", Target("<", 50, "under 50 ms median"), digits=1),
        Figure("p95, all tasks", [percentile(every_latency, 0.95) * 1000], "ms", digits=1),
        Figure("maximum, all tasks", [max(every_latency) * 1000], "ms", digits=1),
    ]
    return BenchmarkResult(NAME, TITLE, method, figures)
