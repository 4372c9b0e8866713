"""Drain throughput: how fast each design empties a hub queue of `echo` tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .hubs import accepted_results, wait_until
from .results import BenchError, BenchmarkResult, Figure, Target, median
from .runs import ECHO_PAYLOAD, Workspace, running, workspace
from .scale import Scale

NAME = "drain"
TITLE = "Drain throughput"

POLL_INTERVAL_SECONDS = 1.0
"""The classic loop sleeps this long after each cycle; the agent uses it only when the hub has no task."""

AGENT_SETTINGS = {
    # Ask again at once while the hub hands out tasks (default 2 s, FLIP's 30 polls a minute).
    "POLL_BURST_INTERVAL_SECONDS": 0,
    "POLL_INTERVAL_SECONDS": POLL_INTERVAL_SECONDS,
}

RUN_LIMIT_SECONDS = 300.0
"""Maximum seconds a drain by the agent or the bare loop may take before the run counts as failed."""


@dataclass(frozen=True)
class DrainRun:
    design: str
    tasks_per_second: float
    delivered: int
    seconds: float


def measure_rate(space: Workspace, design: str, delivered: int, whole_cycles: bool) -> DrainRun:
    """Compute the rate from the hub's records: first poll to last accepted result.

    With `whole_cycles`, for a capped run of the classic loop, the rate is taken
    from the first poll to the last poll, counting the results accepted before
    it, so a cycle cut off by the cap does not count half.
    """
    records = space.hub.store.records
    polls = [record.time.timestamp() for record in records.requests("pending") if record.status == 200]
    results = sorted(record.time.timestamp() for record in records.results() if record.status == 200)
    if not polls or not results:
        raise space.fail(f"{design}: the hub recorded {len(polls)} polls and {len(results)} results")
    start = polls[0]
    if whole_cycles:
        end = polls[-1]
        counted = sum(1 for moment in results if moment <= end)
    else:
        end = results[-1]
        counted = len(results)
    if end <= start or counted == 0:
        raise space.fail(f"{design}: too few cycles to measure a rate")
    return DrainRun(design, counted / (end - start), delivered, end - start)


def run_agent(tasks: int) -> DrainRun:
    with workspace() as space:
        space.hub.store.enqueue_many("echo", ECHO_PAYLOAD, tasks)
        with running(space.start_headless(**AGENT_SETTINGS)) as process:
            done = wait_until(lambda: accepted_results(space.hub) >= tasks or process.poll() is not None, RUN_LIMIT_SECONDS)
        delivered = accepted_results(space.hub)
        if not done or delivered < tasks:
            raise space.fail(f"trust-console delivered {delivered} of {tasks} results")
        return measure_rate(space, "trust-console", delivered, whole_cycles=False)


def run_loop(design: str, tasks: int, cap_seconds: float) -> DrainRun:
    """Run the bare or classic loop until the queue is empty or `cap_seconds` pass."""
    with workspace() as space:
        space.hub.store.enqueue_many("echo", ECHO_PAYLOAD, tasks)
        arguments = [
            design,
            "--until-empty",
            f"--poll-interval={POLL_INTERVAL_SECONDS}",
            f"--max-seconds={cap_seconds}",
            f"--max-requests={3 * tasks + 100}",
        ]
        with running(space.start_module("bench.loops", *arguments)) as process:
            process.wait(cap_seconds + 30)
        delivered = accepted_results(space.hub)
        capped = delivered < tasks
        if capped and design == "bare":
            raise space.fail(f"the bare loop delivered {delivered} of {tasks} results")
        return measure_rate(space, design, delivered, whole_cycles=capped)


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    tasks = scale.drain_tasks
    runs: dict[str, list[DrainRun]] = {"bare": [], "agent": [], "classic": []}
    bare_ratios: list[float] = []
    classic_ratios: list[float] = []

    for round_number in range(scale.runs):
        # The order rotates each round, so a drift of the shared machine does not favour one design.
        order = ["bare", "agent", "classic"]
        order = order[round_number % 3 :] + order[: round_number % 3]
        this_round: dict[str, DrainRun] = {}
        for design in order:
            if design == "agent":
                result = run_agent(tasks)
            elif design == "bare":
                result = run_loop("bare", tasks, RUN_LIMIT_SECONDS)
            else:
                result = run_loop("classic", tasks, scale.classic_drain_cap_seconds)
            this_round[design] = result
            runs[design].append(result)
            progress(f"round {round_number + 1}: {result.design} {result.tasks_per_second:.0f} tasks/s")
        bare_ratios.append(this_round["agent"].tasks_per_second / this_round["bare"].tasks_per_second)
        classic_ratios.append(this_round["agent"].tasks_per_second / this_round["classic"].tasks_per_second)

    classic_delivered = median([run.delivered for run in runs["classic"]])
    if not runs["agent"]:
        raise BenchError("no drain run finished")

    method = f"""\
{tasks:,} `echo` tasks wait on a fresh hub with rate limits off; the payload is a
JSON object of about 250 bytes shaped like FLIP's `cohort_query`. Each round
runs three clients, each against its own new hub, in an order that rotates
from round to round:

- **trust-console**: `trust-console --headless`, the real agent with its
  ledger and INFO logs, which go to a file. It runs on default settings
  except `POLL_BURST_INTERVAL_SECONDS=0` (default 2), so it asks again at
  once while the hub has work, and `POLL_INTERVAL_SECONDS={POLL_INTERVAL_SECONDS:g}`. It runs up to
  4 handlers at once (the `MAX_CONCURRENT_TASKS` default).
- **bare loop** (`python -m bench.loops bare`): poll, then post each result
  in turn, on the agent's own httpx client settings, with no handler, no
  ledger and no heartbeat: the practical limit of one client on this hub.
- **classic loop** (`python -m bench.loops classic`): heartbeat, poll, run
  each task's handler in turn (the agent's `echo` code), report it, then sleep
  {POLL_INTERVAL_SECONDS:g} s. It is stopped after {scale.classic_drain_cap_seconds:g} s
  (about {classic_delivered:,.0f} results), and its rate counts whole cycles only.

Each rate comes from the hub's own records: the number of accepted results
divided by the time from the first poll to the last accepted result, so
process start-up is left out. Each ratio divides rates measured in the same
round."""

    figures = [
        Figure("trust-console", [run.tasks_per_second for run in runs["agent"]], "tasks/s", digits=0),
        Figure("bare loop (practical limit)", [run.tasks_per_second for run in runs["bare"]], "tasks/s", digits=0),
        Figure("classic loop", [run.tasks_per_second for run in runs["classic"]], "tasks/s", digits=0),
        Figure(
            "trust-console / bare loop",
            bare_ratios,
            "",
            Target(">=", 0.8, "at least 0.8"),
            digits=2,
        ),
        Figure("trust-console / classic loop", classic_ratios, "", digits=1),
    ]
    return BenchmarkResult(NAME, TITLE, method, figures)
