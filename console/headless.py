"""The headless host: the agent with stdlib logging to stderr and signal handling.

The first SIGINT or SIGTERM stops claiming tasks and drains: in-flight tasks
finish within DRAIN_TIMEOUT_SECONDS and their results are reported while
heartbeats go on. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from .agent import EXIT_CONFIGURATION, Agent
from .assembly import build_agent
from .event_log import log_event
from .handlers import DIAGNOSTIC_HANDLERS
from .records import TaskState
from .settings import Settings

log = logging.getLogger("console.headless")

def log_start(agent: Agent) -> None:
    """Log the settings that decide what the hub can make this trust do, once at start-up."""
    settings = agent.settings
    enabled = settings.enabled_task_types or agent.registry.task_types
    log.info(
        "agent starting: hub %s, poll every %g s, heartbeat every %g s, up to %d task(s) at once",
        settings.central_hub_api_url,
        settings.poll_interval_seconds,
        settings.heartbeat_interval_seconds,
        settings.max_concurrent_tasks,
    )
    log.info("enabled task types: %s", ", ".join(enabled))
    diagnostic = sorted(set(enabled) & set(DIAGNOSTIC_HANDLERS))
    if diagnostic:
        log.warning(
            "diagnostic task types enabled (%s): the hub can make this trust echo payloads and hold handler"
            " slots; set ENABLED_TASK_TYPES to the task types this trust needs",
            ", ".join(diagnostic),
        )


async def run_headless(settings: Settings) -> int:
    """Run the agent until it stops; return the process exit code."""
    agent = build_agent(settings)
    agent.bus.subscribe(log_event)
    log_start(agent)

    loop = asyncio.get_running_loop()
    signals_received = 0
    drain_task: asyncio.Task[bool] | None = None
    run_task: asyncio.Task[int] | None = None

    def on_signal(signum: int) -> None:
        nonlocal signals_received, drain_task
        signals_received += 1
        name = signal.Signals(signum).name
        if signals_received == 1:
            log.info("%s received: draining (send it again to stop at once)", name)
            agent.stop_claiming()
            drain_task = asyncio.create_task(agent.drain())
        else:
            log.warning("%s received again: stopping at once with %d task(s) in flight", name, agent.in_flight)
            agent.stop(f"stopped at once by a second {name}")
            # A loop may be waiting on the network; cancelling the run ends it now, and run() still closes.
            if run_task is not None:
                run_task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)

    health_server = None
    if settings.metrics_port is not None:
        from .health_server import HealthServer

        health_server = HealthServer(agent, settings.metrics_port)
        try:
            await health_server.start()
        except OSError as error:
            log.error("%s", error)
            await agent.close()
            return EXIT_CONFIGURATION

    run_task = asyncio.create_task(agent.run(), name="agent")
    try:
        exit_code = await run_task
    except asyncio.CancelledError:
        if asyncio.current_task().cancelling():  # type: ignore[union-attr]
            raise  # The caller cancelled us, not a second signal.
        exit_code = agent.exit_code
    finally:
        if health_server is not None:
            await health_server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if drain_task is not None and not drain_task.done():
            drain_task.cancel()

    _log_undelivered(agent)
    return exit_code


def _log_undelivered(agent: Agent) -> None:
    for record in agent.tasks.values():
        if record.state in (TaskState.QUEUED, TaskState.RUNNING, TaskState.AWAITING_REPORT):
            # NOTE: results live in memory only, so a task listed here is lost to this trust and
            # comes back from the hub after its stale recovery (30 minutes in FLIP).
            log.warning("task %s (%s) not delivered at exit (state: %s)", record.task_id, record.task_type, record.state)
