"""Headless log output: JSON fields, escaping and counted repeats."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

from support import start_headless, wait_for

from console.hub import EmbeddedHub, TaskStatus
from console.log_setup import RepeatFilter


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("console.events", level, __file__, 1, message, None, None)


def test_repeats_counted_within_window() -> None:
    now = [0.0]
    repeat_filter = RepeatFilter(window_seconds=60, clock=lambda: now[0])

    assert repeat_filter.filter(record("heartbeat failed: refused; retrying in 1.2 s"))
    assert not repeat_filter.filter(record("heartbeat failed: refused; retrying in 2.5 s"))
    assert not repeat_filter.filter(record("heartbeat failed: refused; retrying in 4.9 s"))
    assert repeat_filter.filter(record("poll failed: refused"))
    assert repeat_filter.filter(record("task 1 started", logging.INFO))
    assert repeat_filter.filter(record("task 1 started", logging.INFO))

    first = record("task 1 report failed (attempt 1); retrying in 1.0 s")
    first.task_id = "t1"
    again = record("task 1 report failed (attempt 2); retrying in 2.0 s")
    again.task_id = "t1"
    assert repeat_filter.filter(first)
    assert repeat_filter.filter(again)

    now[0] = 61.0
    later = record("heartbeat failed: refused; retrying in 30.0 s")
    assert repeat_filter.filter(later)
    assert "repeated 2 more time(s)" in later.getMessage()


def test_json_lines_carry_fields(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    task_id = embedded_hub.store.enqueue("fail", {"message": "scanner \x1b[31m offline"}).id
    process = start_headless(embedded_hub, api_key, tmp_path)
    try:
        wait_for(lambda: embedded_hub.store.task(task_id).status is TaskStatus.FAILED)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)

    lines = [json.loads(line) for line in stderr.splitlines()]
    by_event = {line.get("event"): line for line in lines if line.get("task_id") == task_id}
    assert set(by_event) >= {"TaskStarted", "TaskFinished", "TaskReported"}
    for line in by_event.values():
        assert line["task_type"] == "fail"
        assert line["level"] in ("INFO", "WARNING")
        assert line["time"]
    assert by_event["TaskReported"]["attempt"] == 1
    assert by_event["TaskFinished"]["level"] == "WARNING"
    assert "\x1b" not in stderr
    assert api_key not in stderr
