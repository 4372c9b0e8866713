"""The heartbeat loop, connectivity and the trust's identity."""

from __future__ import annotations

import logging

from tenacity import RetryCallState

from ..events import (
    Connectivity,
    HeartbeatFailed,
    HeartbeatOk,
    IdentityConfirmed,
    IdentityMismatch,
    utc_now,
)
from ..hub_client import (
    AuthFailed,
    HeartbeatReply,
    HubError,
    Identity,
    RateLimited,
    UnexpectedStatus,
)
from ..retrying import sleep_unless_woken
from .exits import EXIT_CONFIGURATION

log = logging.getLogger("console.agent")

CLIENT_REBUILD_AFTER_FAILURES = 3
"""Failed heartbeats in a row after which the HTTP client is rebuilt, dropping pooled connections."""


class HeartbeatMixin:
    """Mixed into Agent: heartbeats on their own schedule, which no task work can delay."""

    async def heartbeat_loop(self) -> None:
        await self._guard("heartbeat", self._heartbeat_forever)

    async def _heartbeat_forever(self) -> None:
        while not self._stopped.is_set():
            await self._heartbeat_once()
            await sleep_unless_woken(self.settings.heartbeat_interval_seconds, self._wake_heartbeat)

    async def _heartbeat_once(self) -> None:
        try:
            async for attempt in self._hub_retrying(
                self._wake_heartbeat,
                keep_going=lambda: not self._stopped.is_set(),
                before_sleep=self._on_heartbeat_retry,
                initial_seconds=self.settings.heartbeat_interval_seconds,
                wait_for_heartbeat=False,
            ):
                with attempt:
                    if self._rebuild_client:
                        self._rebuild_client = False
                        log.info("no hub request succeeded for %d heartbeats; rebuilding the HTTP client", self._heartbeat_failures)
                        await self.client.rebuild()
                    reply = await self._send_heartbeat()
        except HubError:
            return  # Only reached when the agent is stopping.

        self._heartbeat_failures = 0
        self.last_heartbeat_at = utc_now()
        self.last_round_trip_seconds = reply.round_trip_seconds
        self._note_hub_info(reply.hub_version, reply.aes_key_fingerprint)
        self._check_identity(reply.identity)
        if not self._stopped.is_set():
            self._update_online("heartbeat accepted")
        self._publish(HeartbeatOk(round_trip_seconds=reply.round_trip_seconds))

    async def _send_heartbeat(self) -> HeartbeatReply:
        """Send one heartbeat with a fresh health snapshot, or without one if the hub rejects it."""
        snapshot = self.health.snapshot() if self.health is not None else None
        if snapshot is not None and snapshot is self._rejected_snapshot:
            snapshot = None  # The hub refused this one already; wait for the next collection round.
        try:
            return await self.client.heartbeat(snapshot)
        except UnexpectedStatus as error:
            if error.status_code != 422 or snapshot is None:
                raise
            # The heartbeat must still count, so it goes again once without the snapshot.
            log.warning("hub rejected the health snapshot (%s); sending the heartbeat without it", error)
            self._rejected_snapshot = snapshot
            return await self.client.heartbeat(None)

    def _note_hub_info(self, hub_version: str | None, fingerprint: str | None) -> None:
        """Log the hub's version when it changes, and warn once when its key is not ours."""
        if hub_version != self.hub_version and hub_version is not None:
            log.info("hub version %s", hub_version)
        self.hub_version = hub_version
        self.hub_key_fingerprint = fingerprint
        local = self.local_key_fingerprint
        if fingerprint and local and fingerprint != local and not self._fingerprint_warned:
            self._fingerprint_warned = True
            log.warning(
                "the hub's AES key fingerprint %s differs from this trust's %s: payloads will fail to decrypt;"
                " check AES_KEY_BASE64",
                fingerprint,
                local,
            )

    def _on_heartbeat_retry(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else None
        self._heartbeat_failures += 1
        if self._heartbeat_failures % CLIENT_REBUILD_AFTER_FAILURES == 0 and not isinstance(error, AuthFailed):
            self._rebuild_client = True
        assert isinstance(error, HubError)
        self._note_hub_failure(error, self._heartbeat_failures)
        self._publish(HeartbeatFailed(error=str(error), status_code=error.status_code, retry_in_seconds=wait))

    def _note_hub_failure(self, error: HubError, consecutive: int) -> None:
        if isinstance(error, AuthFailed):
            self._set_connectivity(
                Connectivity.AUTH_FAILED,
                f"the hub rejected the API key ({error.status_code}): check TRUST_API_KEY and TRUST_API_KEY_HEADER"
                f" (now {self.settings.trust_api_key_header!r})",
            )
        elif isinstance(error, RateLimited):
            self._set_connectivity(Connectivity.DEGRADED, "the hub is rate limiting this trust")
        elif consecutive >= 2:
            self._set_connectivity(Connectivity.OFFLINE, str(error))
        else:
            self._set_connectivity(Connectivity.DEGRADED, str(error))

    def _update_online(self, reason: str) -> None:
        if self.connectivity in (Connectivity.OFFLINE, Connectivity.AUTH_FAILED):
            # Polls failed while the hub was unreachable, so they get a fresh chance now that it replies again.
            self._poll_failing = False
        if self._poll_failing:
            self._set_connectivity(Connectivity.DEGRADED, "heartbeats succeed but polls fail")
        else:
            self._set_connectivity(Connectivity.ONLINE, reason)

    def _check_identity(self, identity: Identity) -> bool:
        """Record the trust's identity from a reply; stop the agent on a mismatch. True if it matches."""
        expected = self.settings.expected_trust_id
        if expected is not None and identity.trust_id.lower() != str(expected).lower():
            if not self._stopped.is_set():
                self._publish(
                    IdentityMismatch(
                        expected_trust_id=str(expected), trust_id=identity.trust_id, trust_name=identity.trust_name
                    )
                )
                self.stop("identity mismatch", exit_code=EXIT_CONFIGURATION)
            return False

        if self.identity is None:
            self.identity = identity
            self._publish(IdentityConfirmed(trust_id=identity.trust_id, trust_name=identity.trust_name))
            self._identity_ready.set()
        return True
