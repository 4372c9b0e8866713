"""The handler registry, the diagnostic handlers and how failures become results."""

from __future__ import annotations

import json

import pytest

from console.handlers import (
    MAX_RESULT_CHARS,
    HandlerContext,
    HandlerOutcome,
    default_registry,
    fit_result,
    run_handler,
)


def context(task_type: str) -> HandlerContext:
    return HandlerContext("0b7e4d38-5a34-4c8e-8f3e-2d8b1a6f9c01", task_type)


async def run(task_type: str, payload: str, enabled: list[str] | None = None, timeout: float = 5.0) -> HandlerOutcome:
    return await run_handler(default_registry(), enabled, context(task_type), payload, timeout)


async def test_echo_returns_payload() -> None:
    outcome = await run("echo", '{"a": [1, 2], "b": "x"}')

    assert outcome.success
    assert json.loads(outcome.result) == {"a": [1, 2], "b": "x"}


async def test_sleep_returns_seconds() -> None:
    outcome = await run("sleep", '{"seconds": 0.01}')

    assert outcome.success
    assert json.loads(outcome.result) == {"slept_seconds": 0.01}


async def test_fail_contains_message() -> None:
    outcome = await run("fail", '{"message": "disk on fire"}')

    assert not outcome.success
    assert "disk on fire" in json.loads(outcome.result)["error"]
    assert "status_code" not in json.loads(outcome.result)


async def test_unknown_type_names_type() -> None:
    outcome = await run("mystery", "{}")

    assert not outcome.success
    assert "'mystery'" in json.loads(outcome.result)["error"]


async def test_disabled_type_names_type() -> None:
    outcome = await run("echo", "{}", enabled=["sleep"])

    assert not outcome.success
    assert "'echo'" in outcome.error
    assert "ENABLED_TASK_TYPES" in outcome.error


async def test_invalid_json_payload() -> None:
    outcome = await run("echo", "{not json")

    assert not outcome.success
    assert json.loads(outcome.result)["error"].startswith("Invalid payload: ")


@pytest.mark.parametrize("payload", ['{"seconds": -1}', '{"seconds": "5"}', '{"seconds": true}', "[]"])
async def test_sleep_rejects_bad_seconds(payload: str) -> None:
    outcome = await run("sleep", payload)

    assert not outcome.success
    assert outcome.error.startswith("Invalid payload: ")


async def test_timeout_gives_failure() -> None:
    outcome = await run("sleep", '{"seconds": 5}', timeout=0.05)

    assert not outcome.success
    assert "timed out" in outcome.error


async def test_raising_handler_gives_failure() -> None:
    registry = default_registry()

    async def broken(payload: object, ctx: HandlerContext) -> object:
        raise RuntimeError("bad state")

    registry.register("broken", broken)
    outcome = await run_handler(registry, None, context("broken"), "{}", 5.0)

    assert not outcome.success
    assert "RuntimeError: bad state" in outcome.error


def test_failure_status_code_only_when_known() -> None:
    assert json.loads(HandlerOutcome.failed("x", 404).result) == {"error": "x", "status_code": 404}
    assert json.loads(HandlerOutcome.failed("x").result) == {"error": "x"}


def test_success_without_data_is_null() -> None:
    assert HandlerOutcome.succeeded(None).result is None


def test_fit_result_cuts_with_marker() -> None:
    text = "x" * (MAX_RESULT_CHARS + 500)

    fitted = fit_result(text)

    assert len(fitted) <= MAX_RESULT_CHARS
    assert "truncated by trust-console" in fitted
    assert fit_result("short") == "short"
