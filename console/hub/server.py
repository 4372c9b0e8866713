"""EmbeddedHub: the hub app served by uvicorn on 127.0.0.1, in its own thread or the caller's event loop."""

from __future__ import annotations

import logging
from types import TracebackType

from console.hub.app import DEFAULT_API_KEY_HEADER, HUB_VERSION, create_app
from console.hub.faults import FaultInjector
from console.hub.models import TrustIdentity
from console.hub.ratelimit import RateLimiter, RateLimits
from console.hub.store import HubStore
from console.serving import LOOPBACK_HOST, LoopbackServer

log = logging.getLogger(__name__)

__all__ = ["LOOPBACK_HOST", "EmbeddedHub"]


class EmbeddedHub:
    """A real HTTP hub on 127.0.0.1 for the demo, integration tests and benchmarks.

    The store outlives the server, so `stop()` then `start()` simulates a hub
    that goes down and comes back on the same port with its tasks intact.
    """

    def __init__(
        self,
        store: HubStore | None = None,
        *,
        port: int = 0,
        api_key: str | None = None,
        trust_name: str = "Demo Trust",
        trust_id: str | None = None,
        api_key_header: str = DEFAULT_API_KEY_HEADER,
        rate_limits: RateLimits | None = None,
        hub_version: str = HUB_VERSION,
        aes_key_base64: str | None = None,
        log_level: str = "warning",
        access_log: bool = False,
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.store = store if store is not None else HubStore()
        self.api_key = api_key
        self.trust: TrustIdentity | None = None
        if api_key is not None:
            self.trust = self.store.register_trust(api_key, trust_name, trust_id)

        self.api_key_header = api_key_header
        self.app = create_app(
            self.store,
            api_key_header=api_key_header,
            rate_limits=rate_limits,
            hub_version=hub_version,
            aes_key_base64=aes_key_base64,
        )
        self.server = LoopbackServer(
            self.app,
            label="The embedded hub",
            name="embedded-hub",
            port=port,
            log_level=log_level,
            access_log=access_log,
            startup_timeout=startup_timeout,
            shutdown_timeout=shutdown_timeout,
        )

    @property
    def port(self) -> int:
        """The TCP port; with port 0, the free port picked by the first start()."""
        return self.server.port

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_url(self) -> str:
        """The URL the agent uses as CENTRAL_HUB_API_URL; it ends in `/api`."""
        return f"{self.base_url}/api"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/admin"

    @property
    def faults(self) -> FaultInjector:
        return self.store.faults

    @property
    def rate_limiter(self) -> RateLimiter:
        """The limiter in force; assign `rate_limiter.limits` to change limits on a running hub."""
        return self.app.state.rate_limiter

    @property
    def aes_key_fingerprint(self) -> str | None:
        """The fingerprint of the key that seals payloads, or None when they are sent as plain JSON."""
        return self.app.state.aes_key_fingerprint

    @property
    def is_running(self) -> bool:
        """True while the server is started and accepting requests."""
        return self.server.is_running

    def start(self) -> EmbeddedHub:
        """Serve in a background thread with its own event loop; return once the socket accepts requests."""
        self.server.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait up to `timeout` seconds for the thread; the store stays as it is."""
        self.server.stop(timeout)

    def request_stop(self) -> None:
        """Ask the server to shut down without waiting; safe from any thread or a signal handler."""
        self.server.request_stop()

    async def serve(self) -> None:
        """Serve in the running event loop until request_stop() is called."""
        await self.server.serve()

    def __enter__(self) -> EmbeddedHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
