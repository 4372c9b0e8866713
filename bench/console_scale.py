"""Console at scale: batch updates and key presses with 10,000 tasks in the table.

The console runs under Textual's test driver (`app.run_test`) in this
process, hosting a real agent on the embedded hub. Two wrappers, set on the
app instance only, time its work:

- the flush that applies queued row changes (`TrustConsoleApp._flush_updates`,
  which the app calls every 0.25 s and which coalesces rows marked dirty);
- each screen repaint (`Screen._compositor_refresh`). The test driver skips
  turning a repaint into terminal escape codes, so the wrapper of
  `App._display` does that step too and discards the text, as a terminal
  write would cost it.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from textual._compositor import CompositorUpdate

from console.agent import Agent
from console.assembly import build_agent
from console.events import TaskEvent, TaskFinished, TaskReported, TaskStarted
from console.records import ReportAttempt, TaskRecord, TaskState
from console.settings import Settings
from console.tui import TrustConsoleApp

from .hubs import API_KEY, embedded_hub
from .results import BenchError, BenchmarkResult, Figure, Target, median, percentile
from .scale import Scale

NAME = "console"
TITLE = "Console at scale"

TERMINAL_SIZE = (140, 40)
BATCH_SIZE = 100
BURST_KEY_PRESSES = 10
"""Presses after the burst; each may wait seconds, and all must land while the burst's rows are under a minute old."""
BATCHES = 9
"""Three passes of three state changes (started, finished, reported) over three groups of rows."""

FILL_TIMEOUT_SECONDS = 180.0
REPAINT_TIMEOUT_SECONDS = 30.0
SETTLE_TIMEOUT_SECONDS = 60.0
FULL_RECHECK_WAIT_SECONDS = 12.0
"""The app rebuilds every row every 10 s; wait this long to time one such flush."""

TASK_TYPES = [
    ("cohort_query", 40, "encrypted_project_id, query, query_id, query_name, trust_id"),
    ("get_imaging_status", 25, "encoded_query, imaging_project_id"),
    ("persist_cohort", 12, "encrypted_project_id, project_id, query, query_id, trust_id"),
    ("create_imaging", 8, "dicom_to_nifti, project_id, project_name, query, trust_id, users"),
    ("update_user_profile", 8, "email, enabled"),
    ("reimport_studies", 5, "encoded_query, imaging_project_id"),
    ("delete_imaging", 2, "imaging_project_id"),
]


def seed_records(count: int, now: datetime, rng: random.Random) -> list[TaskRecord]:
    """Build `count` records as a day of a busy trust leaves them, oldest first.

    Most are delivered; about 3% failed, 0.5% were rejected, some needed more
    than one report attempt, and the newest 30 are queued, running or
    awaiting their report.
    """
    names = [name for name, _, _ in TASK_TYPES]
    weights = [weight for _, weight, _ in TASK_TYPES]
    keys = {name: key_list for name, _, key_list in TASK_TYPES}
    step = timedelta(days=1) / count
    records = []
    for index in range(count):
        task_type = rng.choices(names, weights)[0]
        received = now - timedelta(days=1) + index * step
        record = TaskRecord(
            task_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            task_type=task_type,
            payload_summary=f"JSON object, {rng.randint(80, 900)} bytes, keys: {keys[task_type]}",
            received_at=received,
        )
        newest = count - index
        if newest <= 20:
            record.state = TaskState.QUEUED if newest <= 16 else TaskState.RUNNING
            if record.state is TaskState.RUNNING:
                record.started_at = received + timedelta(milliseconds=5)
        else:
            _finish_record(record, received, rng, awaiting=newest <= 30)
        records.append(record)
    return records


def _finish_record(record: TaskRecord, received: datetime, rng: random.Random, awaiting: bool) -> None:
    record.started_at = received + timedelta(milliseconds=5)
    record.finished_at = record.started_at + timedelta(seconds=rng.uniform(0.05, 4.0))
    roll = rng.random()
    record.success = roll >= 0.03
    if record.success:
        record.result = '{"status": "ok", "record_count": %d}' % rng.randint(0, 5000)
    else:
        record.error = "imaging-api returned 503 Service Unavailable"
        record.result = '{"error": "imaging-api returned 503 Service Unavailable", "status_code": 503}'
    attempts_failed = 2 if rng.random() < 0.02 else 0
    for attempt in range(attempts_failed):
        at = record.finished_at + timedelta(seconds=attempt + 1)
        record.report_attempts.append(ReportAttempt(at, 503, "result request got 503: Internal server error"))
    if awaiting:
        record.state = TaskState.AWAITING_REPORT
        record.stuck = rng.random() < 0.3
        return
    delivered = record.finished_at + timedelta(seconds=attempts_failed + 0.02)
    if 0.03 <= roll < 0.035:
        record.state = TaskState.REJECTED
        record.rejection = "409: Task is FAILED, not IN_PROGRESS"
        record.report_attempts.append(ReportAttempt(delivered, 409, record.rejection))
    else:
        record.state = TaskState.DONE
        record.report_attempts.append(ReportAttempt(delivered, 200, None))


@dataclass
class Timing:
    start: float
    end: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Probe:
    """Times the app's flushes and repaints through wrappers set on the instances."""

    def __init__(self, app: TrustConsoleApp) -> None:
        self.app = app
        self.flushes: list[Timing] = []
        self.repaints: list[Timing] = []
        self.idle_work: list[Timing] = []
        self.hold = False
        """While True, the app's timer skips its flushes, so the benchmark decides when rows are applied."""
        self.flush = app._flush_updates
        app._flush_updates = self._timer_flush  # type: ignore[method-assign]
        self._wrapped_screens: set[int] = set()

    def _timer_flush(self) -> None:
        if not self.hold:
            self.timed_flush()

    def timed_flush(self) -> Timing:
        table = self.app.task_table
        # A full rebuild of the table, every 10 s; private, so a missing flag reads as "not known".
        rebuild = getattr(table, "_rebuild", None)
        start = time.perf_counter()
        self.flush()
        timing = Timing(start, time.perf_counter(), {"rebuild": rebuild, "rows": table.row_count})
        self.flushes.append(timing)
        return timing

    def watch_repaints(self) -> None:
        """Wrap the current screen's repaint, and make the display step render terminal output."""
        app = self.app
        screen = app.screen
        if id(screen) in self._wrapped_screens:
            return
        self._wrapped_screens.add(id(screen))
        refresh = screen._compositor_refresh

        def timed_refresh() -> None:
            start = time.perf_counter()
            refresh()
            table = app.task_table
            self.repaints.append(
                Timing(start, time.perf_counter(), {"cursor_row": table.cursor_row, "detail": app.detail.task_id})
            )

        screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
        display = app._display

        def rendering_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)

        app._display = rendering_display  # type: ignore[method-assign]

    def watch_table_idle_work(self) -> None:
        """Time the work the DataTable defers to its idle handler: column widths and virtual size."""
        table = self.app.task_table
        for name in ("_update_column_widths", "_update_dimensions"):
            method = getattr(table, name)

            def timed(*arguments: Any, _method: Callable[..., Any] = method) -> Any:
                start = time.perf_counter()
                try:
                    return _method(*arguments)
                finally:
                    self.idle_work.append(Timing(start, time.perf_counter()))

            setattr(table, name, timed)

    async def table_settled(self) -> float:
        """Wait until the DataTable has no deferred work left; return when that was seen."""
        table = self.app.task_table
        deadline = time.perf_counter() + SETTLE_TIMEOUT_SECONDS
        while table._updated_cells or table._require_update_dimensions:
            if time.perf_counter() > deadline:
                raise BenchError(f"the table still had deferred work after {SETTLE_TIMEOUT_SECONDS:g} s")
            await asyncio.sleep(0.001)
        return time.perf_counter()

    async def next_repaint(self, after: float, condition: Callable[[Timing], bool] = lambda timing: True) -> Timing:
        """Wait for the first repaint that starts after `after` and meets `condition`."""
        deadline = time.perf_counter() + REPAINT_TIMEOUT_SECONDS
        while time.perf_counter() < deadline:
            for timing in self.repaints:
                if timing.start >= after and condition(timing):
                    return timing
            await asyncio.sleep(0.001)
        raise BenchError(f"no repaint within {REPAINT_TIMEOUT_SECONDS:g} s")


def _change_batch(agent: Agent, records: list[TaskRecord], step: int) -> list[TaskEvent]:
    """Move each record one state on, as the agent does, and return the events it would publish."""
    now = datetime.now(timezone.utc)
    events: list[TaskEvent] = []
    for record in records:
        if step == 0:
            record.state = TaskState.RUNNING
            record.started_at, record.finished_at, record.success = now, None, None
            record.report_attempts = []
            events.append(TaskStarted(task_id=record.task_id, task_type=record.task_type))
        elif step == 1:
            record.state = TaskState.AWAITING_REPORT
            record.finished_at, record.success = now, True
            events.append(
                TaskFinished(task_id=record.task_id, task_type=record.task_type, success=True, duration_seconds=0.2)
            )
        else:
            record.state = TaskState.DONE
            record.report_attempts = [ReportAttempt(now, 200, None)]
            events.append(TaskReported(task_id=record.task_id, task_type=record.task_type, attempts=1, status_code=200))
    return events


def _burst(agent: Agent, count: int, rng: random.Random) -> list[TaskEvent]:
    """Add `count` tasks received and delivered just now, as a burst of polls leaves them; return their events."""
    now = datetime.now(timezone.utc)
    events: list[TaskEvent] = []
    for record in seed_records(count, now, rng):
        received = now - timedelta(seconds=rng.uniform(0, 5))
        record.received_at = received
        _finish_record(record, received, rng, awaiting=False)
        agent.tasks[record.task_id] = record
        events.append(TaskReported(task_id=record.task_id, task_type=record.task_type, attempts=1, status_code=200))
    return events


async def _press_keys(pilot: Any, probe: Probe, presses: int, rng: random.Random) -> list[float]:
    """Press `down` at random moments; return the seconds from each press to the repaint that shows it."""
    table = probe.app.task_table
    latencies = []
    for _ in range(presses):
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        expected = min(table.cursor_row + 1, table.row_count - 1)
        begin = time.perf_counter()
        await pilot.press("down")
        selected = table.selected_task_id
        repaint = await probe.next_repaint(
            begin, lambda timing: timing.detail["cursor_row"] == expected and timing.detail["detail"] == selected
        )
        latencies.append(repaint.end - begin)
    return latencies


async def _measure(scale: Scale, directory: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    with embedded_hub() as hub:
        settings = Settings(
            _env_file=None,
            central_hub_api_url=hub.api_url,
            trust_api_key=SecretStr(API_KEY),
            state_dir=directory / "state",
        )
        agent = build_agent(settings)
        rng = random.Random(20240601)
        records = seed_records(scale.console_tasks, datetime.now(timezone.utc), rng)
        agent.tasks.update((record.task_id, record) for record in records)

        app = TrustConsoleApp(agent, screenshot_dir=directory)
        probe = Probe(app)
        measured: dict[str, Any] = {}
        async with app.run_test(size=TERMINAL_SIZE) as pilot:
            probe.watch_repaints()
            probe.watch_table_idle_work()
            table = app.task_table
            started = time.perf_counter()
            while not probe.flushes or table.row_count == 0:
                if time.perf_counter() - started > FILL_TIMEOUT_SECONDS:
                    raise BenchError(f"the table showed no row {FILL_TIMEOUT_SECONDS:g} s after start")
                await asyncio.sleep(0.05)
            await probe.table_settled()
            fill = probe.flushes[0]
            measured["fill_seconds"] = fill.seconds
            measured["rows"] = table.row_count
            progress(f"{len(records):,} tasks held, {table.row_count:,} rows shown")

            # Batches of updates, applied by the app's own flush at a moment the benchmark picks.
            batches = []
            # The rows on top of the table, the visible ones among them, in the order shown.
            top = [agent.tasks[row.key.value] for row in table.ordered_rows[: 3 * BATCH_SIZE] if row.key.value in agent.tasks]
            for number in range(BATCHES):
                group = top[(number // 3 % 3) * BATCH_SIZE : (number // 3 % 3 + 1) * BATCH_SIZE]
                probe.hold = True
                await probe.table_settled()
                await pilot._wait_for_screen()
                begin = time.perf_counter()
                for event in _change_batch(agent, group, number % 3):
                    agent.bus.publish(event)
                await pilot._wait_for_screen()
                handled = time.perf_counter()
                flush = probe.timed_flush()
                settled = await probe.table_settled()
                repaint = await probe.next_repaint(max(flush.end, settled))
                probe.hold = False
                idle_work = sum(timing.seconds for timing in probe.idle_work if flush.end <= timing.start <= repaint.start)
                batches.append(
                    {
                        "total": repaint.end - begin,
                        "events": handled - begin,
                        "flush": flush.seconds,
                        "idle_work": idle_work,
                        "repaint": repaint.seconds,
                    }
                )
                progress(f"batch {number + 1} of {BATCHES}: {(repaint.end - begin) * 1000:.0f} ms")
                await asyncio.sleep(rng.uniform(0.1, 0.4))
            measured["batches"] = batches

            # Key presses with the seeded day on screen: a few rows change each second.
            await probe.table_settled()
            measured["presses"] = await _press_keys(pilot, probe, scale.console_key_presses, rng)
            progress(f"key press to repaint: median {median(measured['presses']) * 1000:.0f} ms")

            # Key presses right after a burst: every row younger than a minute shows a new age each second.
            for event in _burst(agent, BATCH_SIZE, rng):
                agent.bus.publish(event)
            await probe.table_settled()
            burst_started = time.perf_counter()
            measured["burst_presses"] = await _press_keys(pilot, probe, BURST_KEY_PRESSES, rng)
            burst_seconds = time.perf_counter() - burst_started
            burst_work = [timing.seconds for timing in probe.idle_work if timing.start >= burst_started]
            measured["burst_idle_share"] = sum(burst_work) / burst_seconds
            progress(f"after a burst: key press to repaint: median {median(measured['burst_presses']) * 1000:.0f} ms")

            def rebuilds() -> list[float]:
                return [timing.seconds for timing in probe.flushes[1:] if timing.detail["rebuild"]]

            deadline = time.perf_counter() + FULL_RECHECK_WAIT_SECONDS
            while time.perf_counter() < deadline and not rebuilds():
                await asyncio.sleep(0.1)
            measured["rebuild_seconds"] = rebuilds()
        await agent.close()
        return measured


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    with tempfile.TemporaryDirectory(prefix="trust-console-bench-") as directory:
        measured = asyncio.run(_measure(scale, Path(directory), progress))

    batches = measured["batches"]
    rows = measured["rows"]
    target = Target("<", 50, "under 50 ms")

    def milliseconds(values: list[float]) -> list[float]:
        return [value * 1000 for value in values]

    def spread(values: list[float]) -> str:
        return f"p95 {percentile(values, 0.95) * 1000:,.0f} ms, maximum {max(values) * 1000:,.0f} ms"

    figures = [
        Figure(f"batch of {BATCH_SIZE} updates: events to repaint", milliseconds([b["total"] for b in batches]), "ms", target, digits=0),
        Figure("- handling the events", milliseconds([b["events"] for b in batches]), "ms", digits=0),
        Figure("- the app's flush into the table", milliseconds([b["flush"] for b in batches]), "ms", digits=0),
        Figure("- the table's column widths (DataTable idle work)", milliseconds([b["idle_work"] for b in batches]), "ms", digits=0),
        Figure("- the repaint", milliseconds([b["repaint"] for b in batches]), "ms", digits=0),
        Figure("key press to repaint", milliseconds(measured["presses"]), "ms", target, digits=0, note=spread(measured["presses"])),
        Figure(
            f"key press to repaint, {BATCH_SIZE} rows under a minute old",
            milliseconds(measured["burst_presses"]),
            "ms",
            target,
            digits=0,
            note=spread(measured["burst_presses"]) + f"; column-width work took {measured['burst_idle_share']:.0%} of the time",
        ),
        Figure(f"first flush ({rows:,} rows)", [measured["fill_seconds"] * 1000], "ms", digits=0),
    ]
    if measured["rebuild_seconds"]:
        figures.append(Figure("flush that rebuilds every row (every 10 s)", milliseconds(measured["rebuild_seconds"]), "ms", digits=0))

    method = f"""\
The console (`TrustConsoleApp`) runs under Textual's test driver
(`app.run_test`, {TERMINAL_SIZE[0]}×{TERMINAL_SIZE[1]}) in the benchmark's process, hosting an agent
built by `build_agent` on default settings against the embedded hub. Before
the app starts, `agent.tasks` is seeded with {scale.console_tasks:,} records of a day at a
busy trust: FLIP task types, 3% failed, 0.5% rejected, a few with failed
report attempts, and the newest 30 queued, running or awaiting their report.
The table shows {rows:,} of them: the console shows the tasks in flight and the
newest finished ones, and pages older ones in from the ledger on request.

Wrappers on the instances time the app's flush (`_flush_updates`, which
applies the rows marked dirty), the DataTable's own deferred work on the
column widths (`_update_column_widths` and `_update_dimensions`, which
Textual runs when the table is idle) and each repaint
(`Screen._compositor_refresh`, plus turning the update into terminal output,
which the test driver skips).

- **Batch of {BATCH_SIZE} updates**: {BATCH_SIZE} rows, among them every visible one, move one
  state on (started, finished or reported), and the {BATCH_SIZE} matching events go
  through the agent's event bus. The figure runs from the first event to the
  end of the first repaint after the flush and the table's deferred work.
  The app's 0.25 s flush timer is held during the batch and the flush is
  called at once, so the figure leaves out the wait for the timer, which
  adds up to 250 ms by design. {BATCHES} batches; the rows end as they began.
- **Key press to repaint**: `down` is pressed {scale.console_key_presses} times (`pilot.press`) at
  random moments, so some presses meet the app's own flushes and one-second
  ticks. The figure runs from the press to the end of the first repaint
  that shows the cursor on the next row and that row's task in the detail
  pane. It is measured twice: with the seeded day on screen, and, with
  {BURST_KEY_PRESSES} presses, just after {BATCH_SIZE} more tasks were received and delivered,
  so {BATCH_SIZE} rows show an age in seconds that changes every second.

The private `pilot._wait_for_screen` waits for the app to handle the
batch's events; the wrapped methods are Textual's private ones, so this
benchmark may need changes with a new Textual."""
    return BenchmarkResult(NAME, TITLE, method, figures)
