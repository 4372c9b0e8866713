"""Start-up: from launching `trust-console --headless` to the first heartbeat the hub records."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from .processes import trust_console_command
from .results import BenchmarkResult, Figure, Target
from .runs import running, wait_for_heartbeat, workspace
from .scale import Scale

NAME = "startup"
TITLE = "Start-up"

MIN_RUNS = 5
"""Start-up runs are short, so this benchmark repeats at least this often."""


def _first_heartbeat_seconds() -> float:
    with workspace() as space:
        launched = time.time()
        with running(space.start_headless()) as process:
            wait_for_heartbeat(space, process)
        first = min(record.time.timestamp() for record in space.hub.store.records.heartbeats())
        return first - launched


def _seconds_to_run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=True)
    return time.perf_counter() - started


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    runs = max(scale.runs, MIN_RUNS)
    first_heartbeat = []
    interpreter = []
    version = []
    for number in range(runs):
        first_heartbeat.append(_first_heartbeat_seconds())
        interpreter.append(_seconds_to_run([sys.executable, "-c", "pass"]))
        version.append(_seconds_to_run([*trust_console_command(), "--version"]))
        progress(f"run {number + 1}: first heartbeat after {first_heartbeat[-1]:.2f} s")

    method = f"""\
Each run starts `trust-console --headless` on default settings against a
fresh hub and an empty STATE_DIR. The figure is the time from just before the
process is launched to the first heartbeat the hub records, both read from
the same clock. For reference, the same rounds time the interpreter
alone (`python -c pass`) and `trust-console --version`, which loads the
command line and its settings model but no agent. {runs} runs."""

    figures = [
        Figure("launch to first heartbeat", first_heartbeat, "s", Target("<", 1.0, "under 1 s"), digits=2),
        Figure("python -c pass", interpreter, "s", digits=2),
        Figure("trust-console --version", version, "s", digits=2),
    ]
    return BenchmarkResult(NAME, TITLE, method, figures)
