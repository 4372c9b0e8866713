"""A steady stream of demo tasks: by default echo, sleep, fail and the odd unknown type.

A caller may pass its own `draw` function to generate other task types, such
as FLIP's, and reuse `draw_diagnostic_task` for part of its mix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable

from console.hub.store import HubStore

log = logging.getLogger(__name__)

# Share of each kind of task; the rest of the probability goes to unknown types.
ECHO_SHARE = 0.50
SLEEP_SHARE = 0.30
FAIL_SHARE = 0.15
LONG_SLEEP_SHARE = 0.10

UNKNOWN_TASK_TYPES = ("train_model", "export_weights", "rotate_credentials")
ECHO_WORDS = ("ping", "hello", "status", "probe", "diagnostic", "round-trip")
FAILURE_MESSAGES = (
    "Simulated failure requested by the hub",
    "data-access-api returned 503 Service Unavailable",
    "imaging-api timed out after 30 s",
    "Query referenced an unknown cohort",
)


TaskDraw = Callable[[random.Random, int], tuple[str, str]]
"""Draws one task from the random generator and the task's sequence number: (task type, payload JSON text)."""


def draw_diagnostic_task(generator: random.Random, sequence: int) -> tuple[str, str]:
    """Draw a diagnostic task: mostly echo, then sleep (some long), fail, and unknown types."""
    draw = generator.random()

    if draw < ECHO_SHARE:
        word = generator.choice(ECHO_WORDS)
        return "echo", json.dumps({"message": word, "sequence": sequence})
    draw -= ECHO_SHARE

    if draw < SLEEP_SHARE:
        if generator.random() < LONG_SLEEP_SHARE:
            seconds: float = generator.randint(20, 60)
        else:
            seconds = round(generator.uniform(0.2, 3.0), 1)
        return "sleep", json.dumps({"seconds": seconds})
    draw -= SLEEP_SHARE

    if draw < FAIL_SHARE:
        return "fail", json.dumps({"message": generator.choice(FAILURE_MESSAGES)})

    return generator.choice(UNKNOWN_TASK_TYPES), json.dumps({"sequence": sequence})


class TaskGenerator:
    """Enqueue one random task about every `interval_seconds`, in a thread or an asyncio task.

    `draw` picks each task; the default draws diagnostic tasks.
    """

    def __init__(
        self,
        store: HubStore,
        *,
        trust_id: str | None = None,
        interval_seconds: float = 2.0,
        seed: int | None = None,
        draw: TaskDraw = draw_diagnostic_task,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.store = store
        self.trust_id = trust_id
        self.interval_seconds = interval_seconds
        self._random = random.Random(seed)
        self._draw = draw
        self._sequence = 0
        self._failed_enqueues = 0
        self._stopped = threading.Event()
        self._stopped.set()
        self._thread: threading.Thread | None = None

    def next_task(self) -> tuple[str, str]:
        """Draw the next task type and its JSON payload text."""
        self._sequence += 1
        return self._draw(self._random, self._sequence)

    def enqueue_next(self) -> str:
        """Enqueue one drawn task and return its id."""
        task_type, payload = self.next_task()
        task = self.store.enqueue(task_type, payload, trust_id=self.trust_id)
        log.debug("Generated %s task %s", task_type, task.id)
        return task.id

    def next_delay(self) -> float:
        """Draw the wait before the next task: the interval, give or take half of it."""
        return self.interval_seconds * self._random.uniform(0.5, 1.5)

    def start(self) -> TaskGenerator:
        """Generate tasks in a daemon thread until stop()."""
        if self._thread is not None:
            raise RuntimeError("The task generator is already running")
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run_in_thread, name="hub-task-generator", daemon=True)
        self._thread.start()
        log.info("Task generator started: one task about every %s s", self.interval_seconds)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop generating; in thread mode, wait up to `timeout` seconds for the thread."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        log.info("Task generator stopped after %d task(s)", self._sequence)

    async def run(self) -> None:
        """Generate tasks in the running event loop until stop() is called or the task is cancelled."""
        self._stopped.clear()
        while not self._stopped.is_set():
            self._enqueue_logging_errors()
            await _sleep_unless_stopped(self._stopped, self.next_delay())

    def _run_in_thread(self) -> None:
        while not self._stopped.is_set():
            self._enqueue_logging_errors()
            self._stopped.wait(self.next_delay())

    def _enqueue_logging_errors(self) -> None:
        try:
            self.enqueue_next()
        except ValueError as exc:
            # The cause (no trust, or several and no trust_id) repeats every tick, so log it sparingly.
            self._failed_enqueues += 1
            if self._failed_enqueues % 100 == 1:
                log.error(
                    "Task generator failed to enqueue a task for trust %s (%d failures so far): %s",
                    self.trust_id,
                    self._failed_enqueues,
                    exc,
                )


async def _sleep_unless_stopped(stopped: threading.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking early (within 0.1 s) once `stopped` is set."""
    remaining = seconds
    while remaining > 0 and not stopped.is_set():
        step = min(remaining, 0.1)
        await asyncio.sleep(step)
        remaining -= step
