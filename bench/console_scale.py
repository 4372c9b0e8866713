"""Console at scale: batch updates and key presses with 10,000 tasks held by the agent.

The console runs under Textual's test driver (`app.run_test`) in this
process, hosting a real agent on the embedded hub, whose ledger is seeded
first. Wrappers set on the instances only time the console's work:

- the app's flush that applies queued row changes (`_flush_updates`, which
  the app calls every 0.25 s and which coalesces rows marked dirty);
- the DataTable's deferred work on column widths and its virtual size,
  which Textual runs when the table is idle;
- each screen repaint (`Screen._compositor_refresh`). The test driver skips
  turning a repaint into terminal escape codes, so the wrapper of
  `App._display` does that step too and discards the text, since a real
  terminal would need it.
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
from console.ledger import Ledger
from console.records import ReportAttempt, TaskRecord, TaskState
from console.settings import Settings
from console.tui import TrustConsoleApp

from .hubs import API_KEY, embedded_hub
from .processes import LOOPBACK_SERVICE_URL
from .results import BenchError, BenchmarkResult, Figure, Target, median, percentile
from .scale import Scale

NAME = "console"
TITLE = "Console at scale"

TERMINAL_SIZE = (140, 40)
BATCH_SIZE = 100
BURST_KEY_PRESSES = 10
"""Presses after the burst, which must all land while the burst's rows are under a minute old."""
BATCHES = 9
"""Three passes of three state changes (started, finished, reported) over three groups of rows."""

FILL_TIMEOUT_SECONDS = 180.0
REPAINT_TIMEOUT_SECONDS = 30.0
SETTLE_TIMEOUT_SECONDS = 60.0
MAX_OLDER_PAGES = 20
PAGE_TIMEOUT_SECONDS = 30.0
LOOPBACK_SERVICES = {"data_access_api_url": LOOPBACK_SERVICE_URL, "imaging_api_url": LOOPBACK_SERVICE_URL}
"""The trust's local services, pointed at a closed loopback port, so no handler can reach another host."""
FULL_RECHECK_WAIT_SECONDS = 12.0
"""Seconds to wait for one of the flushes that rebuild every row, which the app runs every 10 s."""

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

    Most are delivered. About 3% failed, 0.5% were rejected and 2% needed
    more than one report attempt. The newest 30 are queued, running or
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
        # The table's private flag for a full rebuild (every 10 s); None when a new version drops it.
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

        def shows_press(timing: Timing) -> bool:
            # The detail pane shows nothing for a task it cannot look up; otherwise it must show the new one.
            detail_task_id = timing.detail["detail"]
            return timing.detail["cursor_row"] == expected and detail_task_id in (selected, None)

        repaint = await probe.next_repaint(begin, shows_press)
        latencies.append(repaint.end - begin)
    return latencies


async def _apply_batches(pilot: Any, probe: Probe, agent: Agent, rng: random.Random, progress: Callable[[str], None]) -> list[dict[str, float]]:
    """Apply BATCHES batches of state changes to rows on top of the table; return each batch's timings."""
    table = probe.app.task_table
    # The agent's rows nearest the top of the table, the visible ones among them, in the order shown.
    top = [agent.tasks[row.key.value] for row in table.ordered_rows if row.key.value in agent.tasks][: 3 * BATCH_SIZE]
    if len(top) < 3 * BATCH_SIZE:
        raise BenchError(f"the table shows only {len(top)} of the agent's tasks; the batches need {3 * BATCH_SIZE}")
    batches = []
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
        await asyncio.sleep(rng.uniform(0.1, 0.4))
    progress(f"batch of {BATCH_SIZE}: median {median([batch['total'] for batch in batches]) * 1000:,.0f} ms")
    return batches


async def _load_older(pilot: Any, app: TrustConsoleApp) -> int:
    """Press `o` until the console loads no more older tasks; return the number of pages loaded."""
    history = app.history
    pages = 0
    for _ in range(MAX_OLDER_PAGES):
        if not history.can_load:
            break
        await pilot.press("o")
        deadline = time.perf_counter() + PAGE_TIMEOUT_SECONDS
        while history.loading and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        if history.loading:
            raise BenchError(f"a page of older tasks took over {PAGE_TIMEOUT_SECONDS:g} s to load")
        pages += 1
    return pages


def seed_ledger(state_dir: Path, records: list[TaskRecord]) -> None:
    """Write finished records to a new ledger through the ledger's own methods, in one transaction."""
    ledger = Ledger(state_dir)
    # One transaction instead of a synced commit per write makes seeding take seconds, not a minute.
    database = ledger._db
    database.execute("BEGIN")
    try:
        for record in records:
            ledger.record_received(record, None)
            ledger.record_started(record)
            ledger.record_finished(record)
            for attempt in record.report_attempts:
                ledger.record_attempt(record.task_id, attempt)
            if record.state is TaskState.REJECTED:
                ledger.record_rejected(record)
            else:
                ledger.record_delivered(record, record.report_attempts[-1].at)
        database.execute("COMMIT")
    finally:
        ledger.close()


async def measure_console(scale: Scale, directory: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(20240601)
    records = seed_records(scale.console_tasks, datetime.now(timezone.utc), rng)
    finished = [record for record in records if record.state in (TaskState.DONE, TaskState.REJECTED)]
    in_flight = [record for record in records if record.state not in (TaskState.DONE, TaskState.REJECTED)]
    seed_ledger(directory / "state", finished)
    progress(f"ledger seeded with {len(finished):,} finished tasks")

    with embedded_hub() as hub:
        settings = Settings(
            _env_file=None,
            central_hub_api_url=hub.api_url,
            trust_api_key=SecretStr(API_KEY),
            state_dir=directory / "state",
            **LOOPBACK_SERVICES,
        )
        agent = build_agent(settings)
        # Tasks in flight go to memory only: from the ledger, the agent would run or report them again.
        agent.tasks.update((record.task_id, record) for record in in_flight)

        app = TrustConsoleApp(agent, screenshot_dir=directory)
        probe = Probe(app)
        measured: dict[str, Any] = {"held": len(records), "in_memory": len(agent.tasks)}
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
            measured["fill_seconds"] = probe.flushes[0].seconds
            measured["rows"] = table.row_count
            progress(f"{len(records):,} tasks held, {len(agent.tasks):,} in memory, {table.row_count:,} rows shown")

            measured["batches"] = await _apply_batches(pilot, probe, agent, rng, progress)
            await probe.table_settled()
            measured["presses"] = await _press_keys(pilot, probe, scale.console_key_presses, rng)
            progress(f"key press to repaint: median {median(measured['presses']) * 1000:,.0f} ms")

            # A burst: every row younger than a minute shows a new age each second.
            for event in _burst(agent, BATCH_SIZE, rng):
                agent.bus.publish(event)
            await probe.table_settled()
            burst_started = time.perf_counter()
            measured["burst_presses"] = await _press_keys(pilot, probe, BURST_KEY_PRESSES, rng)
            burst_seconds = time.perf_counter() - burst_started
            burst_work = [timing.seconds for timing in probe.idle_work if timing.start >= burst_started]
            measured["burst_idle_share"] = sum(burst_work) / burst_seconds
            progress(f"after a burst: key press to repaint: median {median(measured['burst_presses']) * 1000:,.0f} ms")

            # Older tasks paged in from the ledger, as many as the console holds.
            measured["pages"] = await _load_older(pilot, app)
            await probe.table_settled()
            loaded_at = time.perf_counter()
            measured["loaded_rows"] = table.row_count
            measured["loaded_presses"] = await _press_keys(pilot, probe, scale.console_key_presses, rng)
            progress(
                f"{measured['pages']} older pages loaded, {table.row_count:,} rows: key press to repaint:"
                f" median {median(measured['loaded_presses']) * 1000:,.0f} ms"
            )

            def rebuilds() -> list[tuple[float, int]]:
                return [
                    (timing.seconds, timing.detail["rows"])
                    for timing in probe.flushes
                    if timing.start > loaded_at and timing.detail["rebuild"]
                ]

            deadline = time.perf_counter() + FULL_RECHECK_WAIT_SECONDS
            while time.perf_counter() < deadline and not rebuilds():
                await asyncio.sleep(0.1)
            loaded_rows = table.row_count
            measured["rebuild_seconds"] = [seconds for seconds, rows in rebuilds() if rows == loaded_rows]
            measured["rebuild_rows"] = loaded_rows
        await agent.close()
        return measured


def run(scale: Scale, progress: Callable[[str], None]) -> BenchmarkResult:
    with tempfile.TemporaryDirectory(prefix="trust-console-bench-") as directory:
        measured = asyncio.run(measure_console(scale, Path(directory), progress))

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
        Figure(f"key press to repaint ({rows:,} rows)", milliseconds(measured["presses"]), "ms", target, digits=0, note=spread(measured["presses"])),
        Figure(
            f"key press to repaint, {BATCH_SIZE} rows under a minute old",
            milliseconds(measured["burst_presses"]),
            "ms",
            target,
            digits=0,
            note=spread(measured["burst_presses"]) + f"; column-width work took {measured['burst_idle_share']:.0%} of the time",
        ),
        Figure(
            f"key press to repaint, older tasks loaded ({measured['loaded_rows']:,} rows)",
            milliseconds(measured["loaded_presses"]),
            "ms",
            target,
            digits=0,
            note=spread(measured["loaded_presses"]),
        ),
        Figure(f"first flush ({rows:,} rows)", [measured["fill_seconds"] * 1000], "ms", digits=0),
    ]
    if measured["rebuild_seconds"]:
        figures.append(
            Figure(
                f"flush that rebuilds every row, every 10 s ({measured['rebuild_rows']:,} rows)",
                milliseconds(measured["rebuild_seconds"]),
                "ms",
                digits=0,
                note=f"maximum {max(measured['rebuild_seconds']) * 1000:,.0f} ms",
            )
        )

    method = f"""\
The console (`TrustConsoleApp`) runs under Textual's test driver
(`app.run_test`, {TERMINAL_SIZE[0]}×{TERMINAL_SIZE[1]}) in the benchmark's process, hosting an agent
built by `build_agent` on default settings against the embedded hub. The
agent holds {measured['held']:,} tasks of a day at a busy trust: FLIP task types, 3%
failed, 0.5% rejected, a few with failed report attempts. The finished ones
are written to its ledger before it starts, and the newest 30, queued,
running or awaiting their report, are put in `agent.tasks`, because from the
ledger the agent would run or report them again. The agent loads the newest
finished tasks from its ledger, so it holds {measured['in_memory']:,} in memory. The table
shows {rows:,} rows, because the console shows the tasks the agent holds in
memory and pages older ones in from the ledger when `o` is pressed.

Wrappers on the instances time three steps:

- the app's flush (`_flush_updates`), which applies the rows marked dirty;
- the DataTable's own deferred work on the column widths
  (`_update_column_widths` and `_update_dimensions`), which Textual runs when
  the table is idle;
- each repaint (`Screen._compositor_refresh`), plus turning the update into
  terminal output, which the test driver skips.

The figures:

- **Batch of {BATCH_SIZE} updates**: {BATCH_SIZE} of the agent's rows nearest the top, the
  visible ones among them, move one state on (started, finished or
  reported), and the {BATCH_SIZE} matching events go through the agent's event bus.
  The figure runs from the first event to the end of the first repaint after
  the flush and the table's deferred work. The app's 0.25 s flush timer is
  held during the batch and the flush is called at once, so the figure
  leaves out the wait for the timer, which adds up to 250 ms by design.
  {BATCHES} batches; the rows end as they began.
- **Key press to repaint**: `down` is pressed {scale.console_key_presses} times (`pilot.press`) at
  random moments, so some presses meet the app's own flushes and one-second
  ticks. The figure runs from the press to the end of the first repaint
  that shows the cursor on the next row and that row's task in the detail
  pane. It is measured as the console starts.
- **Key press, 100 rows under a minute old**: the same with {BURST_KEY_PRESSES} presses, just
  after {BATCH_SIZE} more tasks were received and delivered, so {BATCH_SIZE} rows show an
  age in seconds that changes every second.
- **Key press, older tasks loaded**: the same after `o` was pressed until
  the console would load no more older tasks ({measured['pages']} pages).

The private `pilot._wait_for_screen` waits for the app to handle the
batch's events; the wrapped methods are Textual's private ones, so this
benchmark may need changes with a new Textual."""
    return BenchmarkResult(NAME, TITLE, method, figures)
