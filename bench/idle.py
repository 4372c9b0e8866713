"""Idle cost: CPU and resident memory of headless trust-console and of the console, with no task."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from .hubs import wait_until
from .processes import PseudoTerminal, ProcessReading, agent_environment, read_process, trust_console_command
from .results import BenchError, BenchmarkResult, Figure, Target
from .runs import running, workspace
from .scale import Scale

NAME = "idle"
TITLE = "Idle cost"

SETTLE_SECONDS = 5.0
"""Wait after the first heartbeat, so start-up work is not counted as idle."""

PARTS = 3
"""The window is read in this many equal parts; each CPU figure is the median of the parts."""

MEGABYTE = 1_000_000
"""The targets' MB are read as 10^6 bytes, the stricter reading; the notes give MiB too."""
MEBIBYTE = 1 << 20

TERMINAL_SIZE = (140, 40)


def _cpu_percent(before: ProcessReading, after: ProcessReading) -> float:
    return 100 * (after.cpu_seconds - before.cpu_seconds) / (after.at - before.at)


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    part_seconds = scale.idle_window_seconds / PARTS
    with contextlib.ExitStack() as stack:
        space = stack.enter_context(workspace())
        records = space.hub.store.records
        headless = stack.enter_context(running(space.start_headless()))

        console_environment = agent_environment(space.hub, space.directory / "console-state")
        columns, rows = TERMINAL_SIZE
        console = PseudoTerminal(trust_console_command(), console_environment, space.directory, columns, rows)
        stack.callback(console.close)

        # Both agents share the hub and send the same requests, so two trusts' worth of heartbeats means both run.
        if not wait_until(lambda: records.count_requests("heartbeat", 200) >= 2, 20):
            raise space.fail("the headless agent and the console did not both send a heartbeat within 20 s")
        for process, name in ((headless, "headless"), (console.process, "console")):
            if process.poll() is not None:
                raise space.fail(f"the {name} process exited with code {process.returncode}")
        time.sleep(SETTLE_SECONDS)

        heartbeats_before = records.count_requests("heartbeat", 200)
        terminal_bytes_before = console.bytes_read
        readings: dict[str, list[ProcessReading]] = {"headless": [], "console": []}
        pids = {"headless": headless.pid, "console": console.pid}
        for name, pid in pids.items():
            readings[name].append(read_process(pid))
        for part in range(PARTS):
            time.sleep(part_seconds)
            for name, pid in pids.items():
                readings[name].append(read_process(pid))
            progress(f"{(part + 1) * part_seconds:.0f} of {scale.idle_window_seconds:g} s")
        heartbeats = records.count_requests("heartbeat", 200) - heartbeats_before
        terminal_bytes = console.bytes_read - terminal_bytes_before
        if heartbeats == 0:
            raise BenchError("no heartbeat was accepted during the idle window; the agents were not running")

    figures = []
    targets = {
        "headless": (Target("<", 0.5, "under 0.5% of one core"), Target("<", 60, "under 60 MB")),
        "console": (Target("<", 3.0, "under 3% of one core"), Target("<", 150, "under 150 MB")),
    }
    for name in ("headless", "console"):
        series = readings[name]
        cpu_parts = [_cpu_percent(before, after) for before, after in zip(series, series[1:])]
        whole = _cpu_percent(series[0], series[-1])
        cpu_target, memory_target = targets[name]
        label = "trust-console --headless" if name == "headless" else "trust-console (console)"
        figures += [
            Figure(f"{label}: CPU, share of one core", cpu_parts, "%", cpu_target, digits=2, note=f"whole window {whole:.2f}%"),
            Figure(
                f"{label}: resident memory (VmRSS)",
                [series[-1].rss_bytes / MEGABYTE],
                "MB",
                memory_target,
                digits=1,
                note=f"{series[-1].rss_bytes / MEBIBYTE:.1f} MiB",
            ),
            Figure(
                f"{label}: peak resident memory (VmHWM)",
                [series[-1].peak_rss_bytes / MEGABYTE],
                "MB",
                memory_target,
                digits=1,
                note=f"{series[-1].peak_rss_bytes / MEBIBYTE:.1f} MiB",
            ),
        ]

    method = f"""\
`trust-console --headless` and `trust-console` (the console, in a
pseudo-terminal of {TERMINAL_SIZE[0]}×{TERMINAL_SIZE[1]} with `TERM=xterm-256color`, whose output a thread
reads and discards) run side by side on default settings
(`POLL_INTERVAL_SECONDS=5`, `HEARTBEAT_INTERVAL_SECONDS=5`, INFO logs) against
one idle hub, each with its own STATE_DIR. No health snapshot is collected,
because `TRUST_INTERNAL_SERVICE_KEY` is unset. After both have sent a
heartbeat and {SETTLE_SECONDS:g} more seconds have passed, each process is read from
`/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS, VmHWM)
at the start and after each third of a {scale.idle_window_seconds:g}-second window. The CPU
figure is the median of the three thirds, as a percentage of one core. The
memory figures are read at the end, in MB of 10^6 bytes. The hub accepted
{heartbeats} heartbeats from the two in the window, and the console wrote
{terminal_bytes / 1000:.0f} kB to its terminal in it."""
    return BenchmarkResult(NAME, TITLE, method, figures)
