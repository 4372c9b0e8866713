"""`POST {hub}/cohort/results`: a cohort query's counts, or its error report, sent to the hub.

The request goes on its own client built like the hub client's (same timeouts,
CA bundle and proxy settings), which carries the trust's API key in its
default headers, so the key never appears in code that builds a request.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ..hub_client import MalformedReply, parse_retry_after, read_capped
from ..settings import Settings

log = logging.getLogger(__name__)

ATTEMPTS = 3
MAX_DETAIL_CHARS = 300
MAX_RETRY_AFTER_SECONDS = 30.0
"""Longest Retry-After honoured before giving up, so a cohort task does not hang on the hub."""


class CohortResultsFailed(Exception):
    """The hub did not accept the cohort results; the message gives the reason."""


class _HubBusy(CohortResultsFailed):
    """A failure worth another attempt: no reply, 429 or 5xx."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class _wait_for_cohort_hub:
    """Wait for the hub's Retry-After delay when it sends one, else back off exponentially with jitter."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=5.0, jitter=0.5)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, _HubBusy) and error.retry_after_seconds is not None:
            return min(error.retry_after_seconds, MAX_RETRY_AFTER_SECONDS)
        return self._backoff(retry_state)


def error_report(query_id: str, trust_id: str, message: str) -> dict[str, Any]:
    """Build the body that reports a failed cohort query to the hub, so its screen stops showing the query as running."""
    return {
        "query_id": query_id,
        "trust_id": trust_id,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "record_count": 0,
        "data": [],
        "error": message,
    }


def stringify_values(reply: dict[str, Any]) -> dict[str, Any]:
    """Return data-access-api's reply with every `data[].results[].value` turned into a string.

    FLIP's hub declares `value` as a string and rejects numbers, while
    data-access-api returns numeric values as they are.
    """
    groups = reply.get("data")
    if not isinstance(groups, list):
        return reply
    converted = []
    for group in groups:
        results = group.get("results") if isinstance(group, dict) else None
        if isinstance(results, list):
            group = {
                **group,
                "results": [
                    {**result, "value": str(result["value"])}
                    if isinstance(result, dict) and "value" in result
                    else result
                    for result in results
                ],
            }
        converted.append(group)
    return {**reply, "data": converted}


class CohortResultsPoster:
    """Sends cohort results to the hub, retrying twice when it is busy or unreachable."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._url = settings.hub_url("/cohort/results")
        self._http = http

    async def post(self, body: dict[str, Any], task_id: str) -> None:
        """Send one body; raise CohortResultsFailed when the hub does not accept it."""

        def before_sleep(retry_state: RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
            log.warning(
                "cohort results for task %s not accepted (%s); attempt %d of %d in %.1f s",
                task_id,
                error,
                retry_state.attempt_number + 1,
                ATTEMPTS,
                wait,
            )

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_HubBusy),
            stop=stop_after_attempt(ATTEMPTS),
            wait=_wait_for_cohort_hub(),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                await self._post_once(body)

    async def _post_once(self, body: dict[str, Any]) -> None:
        try:
            async with self._http.stream("POST", self._url, json=body) as response:
                content = await read_capped("cohort", response)
        except MalformedReply as error:
            raise CohortResultsFailed(f"the hub's reply was unusable: {error}") from None
        except httpx.TimeoutException as error:
            raise _HubBusy(f"the hub timed out ({type(error).__name__})") from None
        except httpx.RequestError as error:
            raise _HubBusy(f"the hub could not be reached ({type(error).__name__})") from None

        status = response.status_code
        if status == 200:
            return
        message = f"the hub returned {status}" + _detail(content)
        if status == 429 or status >= 500:
            raise _HubBusy(message, parse_retry_after(response.headers.get("Retry-After")))
        raise CohortResultsFailed(message)


def _detail(content: bytes) -> str:
    """Return the hub's `detail` for a message; a 422 list keeps each field and message but not the input."""
    try:
        detail = json.loads(content).get("detail")
    except (ValueError, AttributeError, RecursionError):
        return ""
    if isinstance(detail, list):
        problems = [
            f"{'.'.join(str(part) for part in problem.get('loc', []))}: {problem.get('msg')}"
            for problem in detail
            if isinstance(problem, dict)
        ]
        detail = "; ".join(problems)
    if not isinstance(detail, str) or not detail:
        return ""
    return f": {detail[:MAX_DETAIL_CHARS]}"
