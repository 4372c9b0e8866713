"""DemoTrustServices: the demo's data-access-api and imaging-api, served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import logging
import secrets
import uuid
from types import TracebackType

from ..serving import LOOPBACK_HOST, LoopbackServer
from .app import (
    DATA_ACCESS_API,
    IMAGING_API,
    DemoServicesApi,
    HealthState,
    ServiceControls,
    ServiceRequest,
)
from .dataset import SyntheticCohort
from .imaging import ImagingState

log = logging.getLogger(__name__)

DEFAULT_KEY_HEADER = "X-Trust-Internal-Service-Key"

EXISTING_PROJECTS = 3
EXISTING_USERS = ("researcher.one@example.org", "researcher.two@example.org", "data.manager@example.org")


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
        self.server = LoopbackServer(self.app, label="The demo trust services", name="demo-trust-services", lifespan="off")

    @property
    def port(self) -> int:
        return self.server.port

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
        self.server.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait up to `timeout` seconds for the thread."""
        self.server.stop(timeout)

    def __enter__(self) -> DemoTrustServices:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
