"""LoopbackServer: an ASGI app served by uvicorn on 127.0.0.1, in its own thread or the caller's event loop.

The embedded hub and the demo trust services both run on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"


class _OwnerSignalServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers, leaving SIGINT and SIGTERM to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackServer:
    """Serve an ASGI app on 127.0.0.1; `stop()` then `start()` reuses the port picked first."""

    def __init__(
        self,
        app: Any,
        *,
        label: str,
        name: str,
        port: int = 0,
        log_level: str = "warning",
        access_log: bool = False,
        lifespan: str = "on",
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.app = app
        self.label = label
        """How log lines and errors name this server, such as "The embedded hub"."""
        self.name = name
        """Prefix of the serving thread's name."""
        self._port = port
        self._log_level = log_level
        self._access_log = access_log
        self._lifespan = lifespan
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
            raise RuntimeError(f"{self.label} picks its port when it starts: call start() or serve() first")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def is_running(self) -> bool:
        """True while the server is started and accepting requests."""
        with self._state_lock:
            return self._server is not None and self._server.started and not self._server.should_exit

    def start(self) -> LoopbackServer:
        """Serve in a background thread with its own event loop; return once the socket accepts requests."""
        with self._state_lock:
            if self._server is not None:
                raise RuntimeError(f"{self.label} is already running on port {self._port}")
            listener = self._bind()
            server = self._new_server()
            thread = threading.Thread(
                target=self._run_in_thread, args=(server, listener), name=f"{self.name}-{self._port}", daemon=True
            )
            self._server, self._thread, self._thread_error = server, thread, None
        thread.start()

        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive():
                self._forget(server)
                raise RuntimeError(f"{self.label} failed to start on port {self._port}: {self._thread_error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.label} did not start within {self._startup_timeout} s")
            time.sleep(0.005)

        log.info("%s listening on %s", self.label, self.base_url)
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
            raise RuntimeError("stop() cannot be called from the server's own thread: use request_stop()")

        server.should_exit = True
        if thread is None:
            return

        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s did not stop within %s s; forcing it", self.label, timeout)
            server.force_exit = True
            thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"{self.label} did not stop within {2 * timeout} s")

        self._forget(server)
        log.info("%s on port %d stopped", self.label, self._port)

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
                raise RuntimeError(f"{self.label} is already running on port {self._port}")
            listener = self._bind()
            server = self._new_server()
            self._server = server

        try:
            await server.serve(sockets=[listener])
        finally:
            listener.close()
            self._forget(server)

    def __enter__(self) -> LoopbackServer:
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
            lifespan=self._lifespan,
            timeout_graceful_shutdown=self._shutdown_timeout,
        )
        return _OwnerSignalServer(config)

    def _run_in_thread(self, server: uvicorn.Server, listener: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[listener]))
        except BaseException as exc:  # noqa: BLE001 - uvicorn raises SystemExit when startup fails.
            self._thread_error = exc
            log.exception("%s on port %d stopped with an error", self.label, self._port)
        finally:
            listener.close()

    def _forget(self, server: uvicorn.Server) -> None:
        with self._state_lock:
            if self._server is server:
                self._server, self._thread = None, None
