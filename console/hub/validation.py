"""Checks of result, heartbeat and cohort results requests, returning errors shaped like FastAPI's 422 details.

Each error is `{"loc": [...], "msg": "...", "type": "..."}`, the shape FLIP's
FastAPI hub puts in the `detail` list of a 422 reply.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

MAX_RESULT_LENGTH = 10_000_000
MAX_SERVICES = 16
SERVICE_NAME = re.compile(r"[a-z0-9-]{1,32}")
SERVICE_STATUSES = ("healthy", "degraded", "down", "unknown")
MAX_VERSION_LENGTH = 64
MAX_RESPONSE_MS = 1_000_000

ValidationErrors = list[dict[str, Any]]


class InvalidJson(ValueError):
    """A request body that is not UTF-8 JSON text."""


@dataclass(frozen=True)
class ResultBody:
    """A valid result report."""

    success: bool
    result: str | None


def error(loc: list[str | int], message: str, error_type: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": error_type}


def decode_json(raw: bytes) -> Any:
    """Parse a request body; raise InvalidJson when it is not UTF-8 JSON."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(str(exc)) from exc


def decode_for_record(raw: bytes) -> Any:
    """Return a body as records keep it: the JSON value, else the text, or None when empty."""
    if not raw.strip():
        return None
    try:
        return decode_json(raw)
    except InvalidJson:
        return raw.decode("utf-8", errors="replace")


def json_invalid_error(exc: InvalidJson) -> ValidationErrors:
    return [error(["body"], f"JSON decode error: {exc}", "json_invalid")]


def validate_task_id(raw_id: str) -> tuple[str | None, ValidationErrors]:
    """Return the task id in canonical UUID form, or a uuid_parsing error."""
    try:
        return str(uuid.UUID(raw_id)), []
    except ValueError:
        return None, [error(["path", "task_id"], f"Input should be a valid UUID, got {raw_id!r}", "uuid_parsing")]


def validate_result_body(raw: bytes) -> tuple[ResultBody | None, ValidationErrors]:
    """Check a `{"success": bool, "result": str or null}` body; a missing `result` is null."""
    try:
        body = decode_json(raw)
    except InvalidJson as exc:
        return None, json_invalid_error(exc)
    if not isinstance(body, dict):
        return None, [error(["body"], "Input should be a JSON object", "model_type")]

    errors: ValidationErrors = []
    if "success" not in body:
        errors.append(error(["body", "success"], "Field required", "missing"))
    elif not isinstance(body["success"], bool):
        errors.append(error(["body", "success"], "Input should be a valid boolean", "bool_type"))

    result = body.get("result")
    if result is not None and not isinstance(result, str):
        errors.append(error(["body", "result"], "Input should be a valid string or null", "string_type"))
    elif isinstance(result, str) and len(result) > MAX_RESULT_LENGTH:
        errors.append(
            error(
                ["body", "result"],
                f"String should have at most {MAX_RESULT_LENGTH} characters, got {len(result)}",
                "string_too_long",
            )
        )

    if errors:
        return None, errors
    return ResultBody(success=body["success"], result=result), []


def validate_heartbeat_body(raw: bytes) -> tuple[dict[str, Any] | None, ValidationErrors]:
    """Check an optional health snapshot; an empty or `null` body is a heartbeat without one.

    `collected_at` is not checked because the hub ignores it and stamps its own time.
    """
    if not raw.strip():
        return None, []
    try:
        body = decode_json(raw)
    except InvalidJson as exc:
        return None, json_invalid_error(exc)
    if body is None:
        return None, []
    if not isinstance(body, dict):
        return None, [error(["body"], "Input should be a JSON object", "model_type")]

    services = body.get("services")
    if "services" not in body:
        return None, [error(["body", "services"], "Field required", "missing")]
    if not isinstance(services, dict):
        return None, [error(["body", "services"], "Input should be a JSON object", "dict_type")]
    if not 1 <= len(services) <= MAX_SERVICES:
        kind = "too_short" if not services else "too_long"
        message = f"services should have 1 to {MAX_SERVICES} entries, got {len(services)}"
        return None, [error(["body", "services"], message, kind)]

    errors: ValidationErrors = []
    for name, entry in services.items():
        errors.extend(_service_errors(name, entry))

    if errors:
        return None, errors
    return body, []


def _service_errors(name: str, entry: Any) -> ValidationErrors:
    """Check one `services` entry: its name and its status, version and response_ms."""
    loc: list[str | int] = ["body", "services", name]
    errors: ValidationErrors = []

    if not SERVICE_NAME.fullmatch(name):
        message = f"Service name {name!r} should match ^[a-z0-9-]{{1,32}}$"
        errors.append(error([*loc, "[key]"], message, "string_pattern_mismatch"))
    if not isinstance(entry, dict):
        errors.append(error(loc, "Input should be a JSON object", "model_type"))
        return errors

    # NOTE: FLIP lists version and response_ms on every entry. Its source does not show whether
    # the hub rejects an entry without them, so this hub takes a missing one as null.
    status = entry.get("status")
    if "status" not in entry:
        errors.append(error([*loc, "status"], "Field required", "missing"))
    elif status not in SERVICE_STATUSES:
        expected = ", ".join(repr(value) for value in SERVICE_STATUSES)
        errors.append(error([*loc, "status"], f"Input should be one of {expected}, got {status!r}", "enum"))

    version = entry.get("version")
    if version is not None and not isinstance(version, str):
        errors.append(error([*loc, "version"], "Input should be a valid string or null", "string_type"))
    elif isinstance(version, str) and len(version) > MAX_VERSION_LENGTH:
        message = f"String should have at most {MAX_VERSION_LENGTH} characters, got {len(version)}"
        errors.append(error([*loc, "version"], message, "string_too_long"))

    response_ms = entry.get("response_ms")
    if response_ms is not None and (isinstance(response_ms, bool) or not isinstance(response_ms, int)):
        errors.append(error([*loc, "response_ms"], "Input should be a valid integer or null", "int_type"))
    elif isinstance(response_ms, int) and not 0 <= response_ms <= MAX_RESPONSE_MS:
        message = f"Input should be from 0 to {MAX_RESPONSE_MS}, got {response_ms}"
        errors.append(error([*loc, "response_ms"], message, "int_range"))

    return errors


def validate_cohort_results(body: Any) -> ValidationErrors:
    """Check a `POST /cohort/results` body against FLIP's cohort results model.

    Required: `query_id`, `trust_id` and `created` strings, an integer
    `record_count`, and `data`, a list (or null) of `{"name": str, "results":
    [{"value": str, "count": int}]}`. Optional: `error` (string or null) and
    `suppressed` (boolean). A `value` sent as a number is an error, as in FLIP's model.
    """
    if not isinstance(body, dict):
        return [error(["body"], "Input should be a JSON object", "model_type")]

    # NOTE: FLIP's source shows that `data` may be null, but not whether it may be left out,
    # so this hub requires it.
    errors: ValidationErrors = []
    for name in ("query_id", "trust_id", "created", "record_count", "data"):
        if name not in body:
            errors.append(error(["body", name], "Field required", "missing"))
    for name in ("query_id", "trust_id", "created"):
        if name in body and not isinstance(body[name], str):
            errors.append(error(["body", name], "Input should be a valid string", "string_type"))
    if "record_count" in body and not _is_int(body["record_count"]):
        errors.append(error(["body", "record_count"], "Input should be a valid integer", "int_type"))
    if body.get("error") is not None and not isinstance(body["error"], str):
        errors.append(error(["body", "error"], "Input should be a valid string or null", "string_type"))
    if "suppressed" in body and not isinstance(body["suppressed"], bool):
        errors.append(error(["body", "suppressed"], "Input should be a valid boolean", "bool_type"))

    data = body.get("data")
    if data is not None and not isinstance(data, list):
        errors.append(error(["body", "data"], "Input should be a valid list or null", "list_type"))
    elif data is not None:
        for index, group in enumerate(data):
            errors.extend(_cohort_group_errors(["body", "data", index], group))
    return errors


def _cohort_group_errors(loc: list[str | int], group: Any) -> ValidationErrors:
    if not isinstance(group, dict):
        return [error(loc, "Input should be a JSON object", "model_type")]
    errors: ValidationErrors = []
    if not isinstance(group.get("name"), str):
        errors.append(error([*loc, "name"], "Input should be a valid string", "string_type"))
    results = group.get("results")
    if not isinstance(results, list):
        return [*errors, error([*loc, "results"], "Input should be a valid list", "list_type")]

    for index, result in enumerate(results):
        result_loc = [*loc, "results", index]
        if not isinstance(result, dict):
            errors.append(error(result_loc, "Input should be a JSON object", "model_type"))
            continue
        if not isinstance(result.get("value"), str):
            errors.append(error([*result_loc, "value"], "Input should be a valid string", "string_type"))
        if not _is_int(result.get("count")):
            errors.append(error([*result_loc, "count"], "Input should be a valid integer", "int_type"))
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
