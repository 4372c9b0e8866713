"""The report loop: each result delivered with retries of its own until the hub has it."""

from __future__ import annotations

import asyncio
import logging

from tenacity import RetryCallState

from ..events import (
    ReportFailed,
    ReportStuck,
    TaskReported,
    utc_now,
)
from ..hub_client import (
    RESULT,
    HubError,
    HubUnavailable,
    RateLimited,
    ResultAccepted,
    ResultRejected,
)
from ..records import ReportAttempt, TaskRecord, TaskState

log = logging.getLogger("console.agent")


class ReportingMixin:
    """Mixed into Agent: delivers results, and lets an operator retry a failed report now."""

    def can_retry_report(self, task_id: str) -> bool:
        """Check whether the task's result is waiting for its next report attempt."""
        record = self.tasks.get(task_id)
        return (
            record is not None
            and record.state is TaskState.AWAITING_REPORT
            and (bool(record.report_attempts) or task_id in self._held_reports)
            and task_id in self._retry_now
        )

    def retry_report(self, task_id: str) -> bool:
        """Send a failed report again now instead of after its backoff; False if not applicable."""
        if not self.can_retry_report(task_id):
            return False
        self._operator_retries.add(task_id)
        self._retry_now[task_id].set()
        self._changed.set()
        return True

    def stuck_task_ids(self) -> list[str]:
        return [task_id for task_id, record in self._open.items() if record.stuck and record.state is TaskState.AWAITING_REPORT]

    def retry_all_stuck(self) -> int:
        """Retry every stuck report now; return how many were woken."""
        return sum(self.retry_report(task_id) for task_id in self.stuck_task_ids())

    async def report_loop(self) -> None:
        await self._guard("report", self._report_forever)

    async def _report_forever(self) -> None:
        # Work left from an earlier run waits for the hub to confirm this key's trust, like new work:
        # with a mismatched EXPECTED_TRUST_ID nothing runs and nothing is sent.
        await self._wait_until(lambda: self._identity_ready.is_set() or self._stopped.is_set())
        if self._stopped.is_set():
            return
        self._resume()
        while not self._stopped.is_set():
            task_id = await self._outbox.get()
            if task_id is None or task_id in self._deliveries:
                continue
            self._deliveries[task_id] = asyncio.create_task(self._deliver(task_id), name=f"report-{task_id}")

    async def _deliver(self, task_id: str) -> None:
        record = self.tasks[task_id]
        retry_now = self._retry_now.setdefault(task_id, asyncio.Event())

        def before_sleep(retry_state: RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            wait = retry_state.next_action.sleep if retry_state.next_action else None
            assert isinstance(error, HubError)
            self._check_stuck(record)
            self._publish(
                ReportFailed(
                    task_id=task_id,
                    task_type=record.task_type,
                    # Counted over agent restarts, as the ledger counts them.
                    attempt=len(record.report_attempts),
                    error=str(error),
                    status_code=error.status_code,
                    retry_in_seconds=wait,
                )
            )

        try:
            # The first attempt goes without the retry machinery, whose bookkeeping costs about as
            # much as a ledger commit when hundreds of results a second go out. A failed first
            # attempt is replayed as the retry loop's attempt 1, so backoff and logs are the same.
            try:
                accepted = await self._send_result(record)
            except ResultRejected:
                raise
            except HubError as error:
                first_failure: HubError | None = error
            else:
                first_failure = None

            if first_failure is not None:
                async for attempt in self._hub_retrying(
                    retry_now,
                    keep_going=lambda: not self._stopped.is_set(),
                    before_sleep=before_sleep,
                    initial_seconds=1.0,
                ):
                    with attempt:
                        if first_failure is not None:
                            failure, first_failure = first_failure, None
                            raise failure
                        accepted = await self._send_result(record)
        except ResultRejected as error:
            self._set_state(record, TaskState.REJECTED)
            record.rejection = f"{error.status_code}: {error}"
            if error.status_code == 409 and any(attempt.status_code is None for attempt in record.report_attempts):
                # An earlier attempt got no reply, so the hub may well have recorded that one.
                record.rejection += " (an earlier attempt got no reply and may have been recorded)"
            elif error.status_code == 409 and task_id in self._resumed_ids:
                # The previous run may have been stopped after the hub accepted the result but before
                # the ledger recorded that.
                record.rejection += " (resent after a restart; the hub may have recorded the first delivery)"
            self._persist(self.ledger.record_rejected, record)
            self._publish(
                ReportFailed(
                    task_id=task_id,
                    task_type=record.task_type,
                    attempt=len(record.report_attempts),
                    error=str(error),
                    status_code=error.status_code,
                    final=True,
                )
            )
            return
        except HubError:
            return  # Stopping; the result stays undelivered.
        finally:
            self._deliveries.pop(task_id, None)
            self._retry_now.pop(task_id, None)
            self._changed.set()

        delivered_at = utc_now()
        self._add_attempt(record, ReportAttempt(delivered_at, accepted.status_code, None))
        self._set_state(record, TaskState.DONE)
        record.stuck = False
        self._persist(self.ledger.record_delivered, record, delivered_at)
        attempts = len(record.report_attempts)
        self._publish(
            TaskReported(
                task_id=task_id,
                task_type=record.task_type,
                attempts=attempts,
                status_code=accepted.status_code,
                success=record.success,
                duration_seconds=record.duration_seconds,
            )
        )

    async def _send_result(self, record: TaskRecord) -> ResultAccepted:
        """Send the result once; a failed attempt is recorded before its error is raised."""
        task_id = record.task_id
        while True:
            # An operator's retry goes out at once; every other report waits for the hub's Retry-After.
            await self._wait_for_report_hold(record)
            async with self._report_slots:
                if self._reports_held() and task_id not in self._operator_retries:
                    continue  # A report sent while this one waited for a slot got a 429.
                self._operator_retries.discard(task_id)
                try:
                    return await self.client.send_result(task_id, bool(record.success), record.result)
                except HubError as error:
                    if isinstance(error, RateLimited) and error.retry_after_seconds:
                        self._hold_reports(error.retry_after_seconds)
                    self._add_attempt(record, ReportAttempt(utc_now(), error.status_code, str(error)))
                    raise

    def _reports_held(self) -> bool:
        return self._reports_held_until > asyncio.get_running_loop().time()

    def _hold_reports(self, seconds: float) -> None:
        """Send no result until the hub's Retry-After has passed.

        The hub limits result requests per key, not per task, so after one 429 every other
        report would get a 429 too until the window passes.
        """
        until = asyncio.get_running_loop().time() + seconds
        self._reports_held_until = max(self._reports_held_until, until)

    async def _wait_for_report_hold(self, record: TaskRecord) -> None:
        """Wait until the Retry-After hold ends, or an operator asks for this task's report now."""
        loop = asyncio.get_running_loop()
        task_id = record.task_id
        self._held_reports.add(task_id)
        try:
            while (remaining := self._reports_held_until - loop.time()) > 0 and task_id not in self._operator_retries:
                if self._stopped.is_set():
                    raise HubUnavailable(RESULT, "the agent is stopping")
                # retry_report() and stop() set _changed, which ends this wait early.
                self._changed.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
                except TimeoutError:
                    pass
        finally:
            self._held_reports.discard(task_id)

    def _add_attempt(self, record: TaskRecord, attempt: ReportAttempt) -> None:
        record.report_attempts.append(attempt)
        self._persist(self.ledger.record_attempt, record.task_id, attempt)

    def _mark_stuck_reports(self) -> None:
        """Mark stuck every result being reported for longer than REPORT_STUCK_AFTER_SECONDS.

        The control loop calls this, so a result is marked while it waits for a retry or for the
        hub's Retry-After, not only when an attempt fails.
        """
        for task_id in list(self._deliveries):
            record = self.tasks.get(task_id)
            if record is not None and record.state is TaskState.AWAITING_REPORT:
                self._check_stuck(record)

    def _check_stuck(self, record: TaskRecord) -> None:
        if record.stuck or record.finished_at is None:
            return
        undelivered = (utc_now() - record.finished_at).total_seconds()
        if undelivered < self.settings.report_stuck_after_seconds:
            return
        record.stuck = True
        self._persist(self.ledger.record_state, record)
        self._publish(ReportStuck(task_id=record.task_id, task_type=record.task_type, undelivered_seconds=undelivered))
