"""`/healthz` and `/metrics` on a loopback port, served from the agent's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .agent import Agent
from .metrics import AgentMetrics, assess_health

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM to the headless runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
        config = uvicorn.Config(
            create_health_app(agent, self.metrics), host=LOOPBACK, port=port, log_level="warning", access_log=False
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.port = port

    async def start(self) -> None:
        """Start serving; raises OSError naming METRICS_PORT when the port cannot be bound."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((LOOPBACK, self.port))
        except OSError as error:
            listener.close()
            raise OSError(f"METRICS_PORT {self.port} cannot be used ({error.strerror}); choose a free port") from None
        self.port = listener.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]), name="health-server")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        log.info("health and metrics on http://%s:%d/healthz and /metrics", LOOPBACK, self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await self._task
