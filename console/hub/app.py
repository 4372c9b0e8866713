"""The embedded hub's Starlette app: FLIP's trust API under `/api` and test tools under `/admin`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from console.flip.crypto import key_fingerprint
from console.hub.admin import AdminApi
from console.hub.api import HubApi, error_response
from console.hub.ratelimit import RateLimiter, RateLimits
from console.hub.store import HubStore

log = logging.getLogger(__name__)

DEFAULT_API_KEY_HEADER = "X-Trust-API-Key"
HUB_VERSION = "0.1.0+embedded"
AES_KEY_BYTES = 32


def create_app(
    store: HubStore,
    *,
    api_key_header: str = DEFAULT_API_KEY_HEADER,
    rate_limits: RateLimits | None = None,
    hub_version: str = HUB_VERSION,
    aes_key_base64: str | None = None,
) -> Starlette:
    """Build the hub app; `app.state` contains `store`, `rate_limiter`, `api_key_header` and `aes_key_fingerprint`.

    `rate_limits` defaults to FLIP's limits (30 polls, 30 heartbeats and 60
    results per minute per key); pass `RateLimits.off()` to disable them.
    With `aes_key_base64`, every payload handed out is sealed in FLIP's AES-GCM
    envelope for its task type, and heartbeat replies carry the key's fingerprint.
    """
    payload_key = decode_aes_key(aes_key_base64) if aes_key_base64 is not None else None
    fingerprint = key_fingerprint(payload_key) if payload_key is not None else None
    rate_limiter = RateLimiter(rate_limits)
    api = HubApi(
        store,
        api_key_header=api_key_header,
        rate_limiter=rate_limiter,
        hub_version=hub_version,
        aes_key_fingerprint=fingerprint,
        payload_key=payload_key,
    )
    admin = AdminApi(store)

    app = Starlette(
        routes=[Mount("/api", routes=api.routes()), Mount("/admin", routes=admin.routes())],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
        lifespan=_stale_recovery_lifespan(store),
    )
    app.state.store = store
    app.state.rate_limiter = rate_limiter
    app.state.api_key_header = api_key_header
    app.state.aes_key_fingerprint = fingerprint
    return app


def aes_key_fingerprint(aes_key_base64: str) -> str:
    """Return the first 12 hex characters of the SHA-256 of the decoded 32-byte key."""
    return key_fingerprint(decode_aes_key(aes_key_base64))


def decode_aes_key(aes_key_base64: str) -> bytes:
    """Decode the hub's shared key, raising ValueError unless it is base64 of 32 bytes."""
    try:
        key = base64.b64decode(aes_key_base64, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"AES key is not valid base64: {exc}") from exc
    if len(key) != AES_KEY_BYTES:
        raise ValueError(f"AES key must decode to {AES_KEY_BYTES} bytes, got {len(key)}")
    return key


def _stale_recovery_lifespan(store: HubStore):
    """Run stale recovery every `store.stale_check_interval_seconds` while the server runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_recover_stale_periodically(store), name="hub-stale-recovery")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


async def _recover_stale_periodically(store: HubStore) -> None:
    while True:
        # Read the interval on each pass, so a test may shorten it on a running hub.
        await asyncio.sleep(store.stale_check_interval_seconds)
        try:
            store.recover_stale()
        except Exception:
            log.exception("Stale recovery pass failed; trying again in %s s", store.stale_check_interval_seconds)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Send routing errors (404 unknown path, 405 wrong method) as JSON like the other errors."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("Unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")
