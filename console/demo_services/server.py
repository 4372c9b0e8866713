"""DemoTrustServices: the demo's data-access-api and imaging-api, served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from .app import DATA_ACCESS_API, IMAGING_API, DemoServicesApi, HealthState, ServiceControls, ServiceRequest
from .dataset import SyntheticCohort
from .imaging import ImagingState

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"
DEFAULT_KEY_HEADER = "X-Trust-Internal-Service-Key"
STARTUP_TIMEOUT_SECONDS = 10.0

EXISTING_PROJECTS = 3
EXISTING_USERS = ("researcher.one@example.org", "researcher.two@example.org", "data.manager@example.org")


class _OwnerSignalServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers, leaving SIGINT and SIGTERM to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DemoTrustServices:
    """Stand-ins for a trust's data-access-api and imaging-api on one loopback port.

    At start-up they hold a synthetic dataset, a few imaging projects with
    imports under way, and a few users, so every FLIP task type has something
    to act on. Use it as a context manager, or call start() and stop().
    """

    def __init__(
        self,
        *,
        internal_key: str | None = None,
        internal_key_header: str = DEFAULT_KEY_HEADER,
        seed: int | None = None,
        rows: int = 12_000,
    ) -> None:
        self.internal_key = internal_key if internal_key is not None else secrets.token_urlsafe(24)
        self.internal_key_header = internal_key_header
        self.controls = ServiceControls()
        self.cohort = SyntheticCohort(rows=rows, seed=seed)
        self.imaging = ImagingState(seed=seed)
        for email in EXISTING_USERS:
            self.imaging.add_user(email)
        for number in range(EXISTING_PROJECTS):
            self.imaging.create_project(
                {"project_id": str(uuid.uuid4()), "project_name": f"existing-study-{number + 1}"},
                started_seconds_ago=30.0 * (number + 1),
            )
        api = DemoServicesApi(
            self.cohort,
            self.imaging,
            self.controls,
            internal_key=self.internal_key,
            internal_key_header=internal_key_header,
        )
        self.app = api.app()
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("The demo services pick their port when they start: call start() first")
        return self._port

    @property
    def data_access_api_url(self) -> str:
        """The URL to use as DATA_ACCESS_API_URL."""
        return f"http://{LOOPBACK_HOST}:{self.port}/{DATA_ACCESS_API}"

    @property
    def imaging_api_url(self) -> str:
        """The URL to use as IMAGING_API_URL."""
        return f"http://{LOOPBACK_HOST}:{self.port}/{IMAGING_API}"

    def set_health(self, service: str, state: HealthState) -> None:
        self.controls.set_health(service, state)

    def set_delay(self, service: str, seconds: float) -> None:
        self.controls.set_delay(service, seconds)

    def fail_next(self, service: str, status: int, count: int = 1) -> None:
        self.controls.fail_next(service, status, count)

    def requests(self, service: str | None = None, *, include_health: bool = False) -> list[ServiceRequest]:
        return self.controls.requests(service, include_health=include_health)

    def start(self) -> DemoTrustServices:
        """Serve in a background thread; return once the socket accepts requests."""
        if self._server is not None:
            raise RuntimeError(f"The demo services are already running on port {self._port}")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            listener.bind((LOOPBACK_HOST, 0))
            listener.listen()
        except OSError:
            listener.close()
            raise
        self._port = listener.getsockname()[1]

        config = uvicorn.Config(self.app, log_config=None, log_level="warning", access_log=False, ws="none", lifespan="off")
        server = _OwnerSignalServer(config)
        thread = threading.Thread(target=self._serve, args=(server, listener), name="demo-trust-services", daemon=True)
        self._server, self._thread = server, thread
        thread.start()

        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The demo trust services failed to start on port {self._port}")
            time.sleep(0.005)
        log.info("Demo trust services listening on http://%s:%d", LOOPBACK_HOST, self._port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait up to `timeout` seconds for the thread."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)

    def __enter__(self) -> DemoTrustServices:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, server: uvicorn.Server, listener: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[listener]))
        except BaseException:  # noqa: BLE001 - uvicorn raises SystemExit when startup fails.
            log.exception("Demo trust services on port %d stopped with an error", self._port)
        finally:
            listener.close()
