"""Retry policies for requests to the hub, declared once and shared by every loop."""

from __future__ import annotations

import asyncio

from tenacity import RetryCallState, wait_exponential_jitter
from tenacity.wait import wait_base

from .hub_client import AuthFailed, RateLimited


class wait_for_hub(wait_base):
    """Wait as the hub requests: Retry-After on 429, a slow fixed pace on a bad key, else capped backoff.

    The backoff is exponential with jitter from `initial_seconds` up to
    `max_seconds`, so a hub that is down receives few requests, and many
    trusts recovering at once do not arrive together.
    """

    def __init__(self, initial_seconds: float, max_seconds: float, auth_retry_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.auth_retry_seconds = auth_retry_seconds
        self._backoff = wait_exponential_jitter(multiplier=initial_seconds, max=max_seconds, jitter=initial_seconds)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after_seconds is not None:
            # A Retry-After of 0, negative or in the past must not turn into a tight loop.
            return max(error.retry_after_seconds, self._backoff(retry_state))
        if isinstance(error, AuthFailed):
            return self.auth_retry_seconds
        return self._backoff(retry_state)


async def sleep_unless_woken(seconds: float, wake: asyncio.Event) -> bool:
    """Sleep for `seconds`, or less if `wake` is set; clear `wake` and return whether it was set."""
    if not wake.is_set():
        try:
            async with asyncio.timeout(seconds):
                await wake.wait()
        except TimeoutError:
            pass
    woken = wake.is_set()
    wake.clear()
    return woken
