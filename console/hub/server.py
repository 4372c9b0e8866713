"""EmbeddedHub: the hub app served by uvicorn on 127.0.0.1, in its own thread or the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from console.hub.app import DEFAULT_API_KEY_HEADER, HUB_VERSION, create_app
from console.hub.faults import FaultInjector
from console.hub.models import TrustIdentity
from console.hub.ratelimit import RateLimiter, RateLimits
from console.hub.store import HubStore

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"


class _OwnerSignalServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers, leaving SIGINT and SIGTERM to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
        self._port = port
        self._log_level = log_level
        self._access_log = access_log
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout

        self._state_lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    @property
    def port(self) -> int:
        """The TCP port; with port 0, the free port picked by the first start()."""
        if self._port == 0:
            raise RuntimeError("The hub picks its port when it starts: call start() or serve() first")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}"

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
        with self._state_lock:
            return self._server is not None and self._server.started and not self._server.should_exit

    def start(self) -> EmbeddedHub:
        """Serve in a background thread with its own event loop; return once the socket accepts requests."""
        with self._state_lock:
            if self._server is not None:
                raise RuntimeError(f"The embedded hub is already running on port {self._port}")
            listener = self._bind()
            server = self._new_server()
            thread = threading.Thread(
                target=self._run_in_thread, args=(server, listener), name=f"embedded-hub-{self._port}", daemon=True
            )
            self._server, self._thread, self._thread_error = server, thread, None
        thread.start()

        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive():
                self._forget(server)
                raise RuntimeError(f"The embedded hub failed to start on port {self._port}: {self._thread_error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"The embedded hub did not start within {self._startup_timeout} s")
            time.sleep(0.005)

        log.info("Embedded hub listening on %s", self.base_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait up to `timeout` seconds for the thread; the store stays as it is.

        Requests still running after the shutdown timeout are cancelled, and their
        clients see the connection close. In `serve()` mode this only requests the stop.
        """
        with self._state_lock:
            server, thread = self._server, self._thread
        if server is None:
            return
        if thread is threading.current_thread():
            raise RuntimeError("stop() cannot be called from the hub's own thread: use request_stop()")

        server.should_exit = True
        if thread is None:
            return

        thread.join(timeout)
        if thread.is_alive():
            log.warning("Embedded hub did not stop within %s s; forcing it", timeout)
            server.force_exit = True
            thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"The embedded hub thread did not stop within {2 * timeout} s")

        self._forget(server)
        log.info("Embedded hub on port %d stopped", self._port)

    def request_stop(self) -> None:
        """Ask the server to shut down without waiting; safe from any thread or a signal handler."""
        server = self._server
        if server is not None:
            server.should_exit = True

    async def serve(self) -> None:
        """Serve in the running event loop until request_stop() is called.

        Signal handling is left to the caller, which may call request_stop() from a handler.
        """
        with self._state_lock:
            if self._server is not None:
                raise RuntimeError(f"The embedded hub is already running on port {self._port}")
            listener = self._bind()
            server = self._new_server()
            self._server = server

        try:
            await server.serve(sockets=[listener])
        finally:
            listener.close()
            self._forget(server)

    def __enter__(self) -> EmbeddedHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        """Open the listening socket on 127.0.0.1, keeping the first port picked for later restarts."""
        # Accepted connections inherit proto IPPROTO_TCP, and asyncio turns Nagle's algorithm off
        # only for that proto. With proto 0, each reply on a kept-alive connection waits for a delayed
        # ACK, about 40 ms on Linux loopback (measured with httpx, 200 polls).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # SO_REUSEADDR lets a restart bind the port again while old connections sit in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((LOOPBACK_HOST, self._port))
            listener.listen()
        except OSError:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        return listener

    def _new_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level=self._log_level,
            access_log=self._access_log,
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=self._shutdown_timeout,
        )
        return _OwnerSignalServer(config)

    def _run_in_thread(self, server: uvicorn.Server, listener: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[listener]))
        except BaseException as exc:  # noqa: BLE001 - uvicorn raises SystemExit when startup fails.
            self._thread_error = exc
            log.exception("Embedded hub on port %d stopped with an error", self._port)
        finally:
            listener.close()

    def _forget(self, server: uvicorn.Server) -> None:
        with self._state_lock:
            if self._server is server:
                self._server, self._thread = None, None
