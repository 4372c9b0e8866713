"""Sizes and durations of the benchmarks: the full run that docs/benchmarks.md records, and `--quick`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    runs: int
    """Repetitions of each measurement; each figure is the median over them."""

    drain_tasks: int
    classic_drain_cap_seconds: float
    """The classic loop runs at most this long per drain; its rate is taken over whole cycles."""

    long_task_seconds: float
    """Length of the long `sleep` task in the head-of-line and heartbeat benchmarks."""
    classic_head_of_line_cap_seconds: float

    slow_poll_window_seconds: float
    idle_window_seconds: float
    console_tasks: int
    console_key_presses: int
    delivery_tasks_per_run: int


FULL = Scale(
    name="full",
    runs=3,
    drain_tasks=5000,
    classic_drain_cap_seconds=15.0,
    long_task_seconds=60.0,
    classic_head_of_line_cap_seconds=70.0,
    slow_poll_window_seconds=25.0,
    idle_window_seconds=60.0,
    console_tasks=10_000,
    console_key_presses=20,
    delivery_tasks_per_run=20,
)

QUICK = Scale(
    name="quick",
    runs=3,
    drain_tasks=1000,
    classic_drain_cap_seconds=8.0,
    long_task_seconds=20.0,
    classic_head_of_line_cap_seconds=10.0,
    slow_poll_window_seconds=15.0,
    idle_window_seconds=20.0,
    console_tasks=10_000,
    console_key_presses=15,
    delivery_tasks_per_run=10,
)

SCALES = {scale.name: scale for scale in (FULL, QUICK)}
