"""`trust-console check`: a one-shot test of the settings, the hub and the local services.

It sends one heartbeat, as the agent would, and prints each finding with what
to fix. Exit code 0 when everything checked is well, 1 otherwise; invalid
settings exit 2 before anything is sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import httpx

from .hub_client import AuthFailed, HubClient, HubError, HubUnavailable, MalformedReply, RateLimited, UnexpectedStatus
from .flip.handlers import FLIP_TASK_TYPES
from .settings import Settings
from .text import printable

LOCAL_PROBE_TIMEOUT_SECONDS = 5.0

def key_fingerprint(key_base64: str) -> str:
    """Return FLIP's fingerprint of a shared key: the first 12 hex digits of SHA-256 of the decoded key."""
    return hashlib.sha256(base64.b64decode(key_base64)).hexdigest()[:12]


class Report:
    """Findings of one check run, printed as they are found."""

    def __init__(self) -> None:
        self.failed = False

    def ok(self, text: str) -> None:
        print(f"ok    {printable(text)}")

    def fail(self, text: str) -> None:
        self.failed = True
        print(f"FAIL  {printable(text)}")

    def note(self, text: str) -> None:
        print(f"note  {printable(text)}")


def run_check(settings: Settings) -> int:
    report = Report()
    asyncio.run(_check(settings, report))
    print("all checks passed" if not report.failed else "some checks failed: fix the lines marked FAIL")
    return 1 if report.failed else 0


async def _check(settings: Settings, report: Report) -> None:
    report.ok(f"settings valid; hub {settings.central_hub_api_url}, key header {settings.trust_api_key_header}")
    client = HubClient(settings)
    try:
        await _check_hub(settings, client, report)
    finally:
        await client.aclose()
    await _check_local_services(settings, report)


async def _check_hub(settings: Settings, client: HubClient, report: Report) -> None:
    try:
        reply = await client.heartbeat()
    except AuthFailed as error:
        report.fail(f"the hub rejected the API key ({error.status_code}): check TRUST_API_KEY and TRUST_API_KEY_HEADER")
        return
    except RateLimited:
        report.fail("the hub is rate limiting this key (429): another agent may be running with it; try again shortly")
        return
    except HubUnavailable as error:
        report.fail(f"cannot reach the hub at {settings.central_hub_api_url}: {error}; check the URL, proxy and network")
        return
    except UnexpectedStatus as error:
        report.fail(f"unexpected reply: {error}")
        return
    except (MalformedReply, HubError) as error:
        report.fail(f"the hub's heartbeat reply is unusable: {error}")
        return

    report.ok(f"heartbeat accepted in {reply.round_trip_seconds * 1000:.0f} ms")
    report.ok(f"the hub identifies this key as trust {reply.identity.trust_name} ({reply.identity.trust_id})")
    if reply.hub_version:
        report.ok(f"hub version {reply.hub_version}")

    expected = settings.expected_trust_id
    if expected is not None and str(expected).lower() != reply.identity.trust_id.lower():
        report.fail(f"EXPECTED_TRUST_ID is {expected}, but the hub says {reply.identity.trust_id}: wrong key for this trust")
    elif expected is not None:
        report.ok("trust id matches EXPECTED_TRUST_ID")

    local = key_fingerprint(settings.aes_key_base64.get_secret_value()) if settings.aes_key_base64 else None
    remote = reply.aes_key_fingerprint
    if remote and local and remote != local:
        report.fail(f"AES key fingerprints differ (hub {remote}, this trust {local}): check AES_KEY_BASE64")
    elif remote and not local:
        report.fail(f"the hub encrypts payloads (key {remote}) but AES_KEY_BASE64 is not set")
    elif local and not remote:
        report.note(f"AES_KEY_BASE64 is set (key {local}) but the hub reports no key fingerprint")
    elif local:
        report.ok(f"AES key fingerprints match ({local})")


async def _check_local_services(settings: Settings, report: Report) -> None:
    enabled = set(settings.enabled_task_types) if settings.enabled_task_types else set(FLIP_TASK_TYPES)
    if not enabled & set(FLIP_TASK_TYPES):
        report.note("no FLIP task type is enabled, so the local services were not probed")
        return
    if settings.trust_internal_service_key is None:
        report.note(
            "TRUST_INTERNAL_SERVICE_KEY is not set, so FLIP task types will fail and the local services were not"
            " probed; set it, or set ENABLED_TASK_TYPES to the types this trust runs"
        )
        return

    headers = {settings.trust_internal_service_key_header: settings.trust_internal_service_key.get_secret_value()}
    async with httpx.AsyncClient(timeout=LOCAL_PROBE_TIMEOUT_SECONDS, headers=headers) as client:
        for name, base_url, setting in (
            ("data-access-api", settings.data_access_api_url, "DATA_ACCESS_API_URL"),
            ("imaging-api", settings.imaging_api_url, "IMAGING_API_URL"),
        ):
            started = time.monotonic()
            try:
                response = await client.get(f"{base_url.rstrip('/')}/health")
            except httpx.HTTPError as error:
                report.fail(f"{name} at {base_url} is unreachable ({type(error).__name__}: {error}): check {setting}")
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            if response.status_code != 200:
                report.fail(f"{name} at {base_url} answered /health with {response.status_code}: check the service")
            else:
                report.ok(f"{name} at {base_url} is up ({elapsed_ms:.0f} ms)")
