"""`/healthz` and `/metrics` on a loopback port, served from the agent's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .agent import Agent
from .metrics import AgentMetrics, assess_health
from .serving import LoopbackServer

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def create_health_app(agent: Agent, metrics: AgentMetrics) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        health = assess_health(agent)
        body = {"status": "ok" if health.healthy else "unhealthy", "reasons": health.reasons}
        return JSONResponse(body, status_code=200 if health.healthy else 503)

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics_page)])


class HealthServer:
    """Serve health and metrics for one agent on 127.0.0.1:`port` until stopped."""

    def __init__(self, agent: Agent, port: int) -> None:
        self.metrics = AgentMetrics(agent)
        self.port = port
        self._server = LoopbackServer(
            create_health_app(agent, self.metrics), label="The health server", name="health", port=port, lifespan="off"
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving in the running loop; raises OSError naming METRICS_PORT when the port cannot be bound."""
        self._task = asyncio.create_task(self._server.serve(), name="health-server")
        while not self._server.is_running:
            if self._task.done():
                error = self._task.exception()
                reason = error.strerror if isinstance(error, OSError) else repr(error)
                raise OSError(f"METRICS_PORT {self.port} cannot be used ({reason}); choose a free port")
            await asyncio.sleep(0.01)
        self.port = self._server.port
        log.info("health and metrics on %s/healthz and /metrics", self._server.base_url)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
