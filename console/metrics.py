"""Prometheus metrics and the health verdict of a running agent.

Counters and the round-trip histogram are fed by agent events. Task counts
by state and the oldest undelivered result are read from the agent when
scraped, so they are never stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as CounterMetric
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .agent import Agent
from .events import AgentEvent, Connectivity, HeartbeatOk, hub_reply
from .records import TaskState

UNREACHABLE_HEARTBEATS = 3
"""Heartbeat intervals without a successful heartbeat before /healthz reports the hub unreachable."""


class AgentMetrics:
    """The agent's Prometheus metrics, in a registry of their own."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.registry = CollectorRegistry()
        self.hub_responses = CounterMetric(
            "trust_console_hub_responses",
            "Replies from the hub by endpoint and HTTP status ('error' when no reply arrived).",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.heartbeat_round_trip = Histogram(
            "trust_console_heartbeat_round_trip_seconds",
            "Round trip of successful heartbeats.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.rate_limited_waits = CounterMetric(
            "trust_console_rate_limited_waits",
            "Waits the hub asked for with 429, by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(agent))
        agent.bus.subscribe(self.observe)

    def observe(self, event: AgentEvent) -> None:
        reply = hub_reply(event)
        if reply is None:
            return
        self.hub_responses.labels(endpoint=reply.endpoint, status=str(reply.status_code or "error")).inc()
        if reply.status_code == 429:
            self.rate_limited_waits.labels(endpoint=reply.endpoint).inc()
        if isinstance(event, HeartbeatOk):
            self.heartbeat_round_trip.observe(event.round_trip_seconds)


class _StateCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = Counter(record.state for record in self.agent.tasks.values())
        tasks = GaugeMetricFamily("trust_console_tasks", "Tasks the agent holds, by state.", labels=["state"])
        for state in TaskState:
            tasks.add_metric([state.value.replace(" ", "_")], counts.get(state, 0))
        stuck = sum(1 for record in self.agent.tasks.values() if record.stuck)
        tasks.add_metric(["stuck"], stuck)
        yield tasks

        oldest = self.agent.oldest_undelivered_seconds()
        yield GaugeMetricFamily(
            "trust_console_oldest_undelivered_result_age_seconds",
            "Age of the oldest result the hub has not accepted yet; 0 when none waits.",
            value=oldest or 0.0,
        )
        connected = GaugeMetricFamily("trust_console_connectivity", "1 for the current hub connectivity.", labels=["state"])
        for state in Connectivity:
            connected.add_metric([state.value.replace(" ", "_")], 1.0 if self.agent.connectivity is state else 0.0)
        yield connected


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: list[str]


def assess_health(agent: Agent) -> Health:
    """Decide whether the agent is healthy, and why not."""
    settings = agent.settings
    reasons: list[str] = []

    if agent.stopped or not agent.claiming:
        reasons.append(f"agent stopping: {agent.stop_reason or 'draining'}")
    if agent.connectivity is Connectivity.AUTH_FAILED:
        reasons.append("the hub rejects the API key: check TRUST_API_KEY and TRUST_API_KEY_HEADER")

    if agent.last_heartbeat_at is None:
        reasons.append("no successful heartbeat yet")
    else:
        from .events import utc_now

        silent = (utc_now() - agent.last_heartbeat_at).total_seconds()
        if silent > UNREACHABLE_HEARTBEATS * settings.heartbeat_interval_seconds + settings.http_timeout_seconds:
            reasons.append(f"hub unreachable: no successful heartbeat for {silent:.0f} s")

    if not agent.stopped and agent.claiming:
        dead = sorted(set(agent.loops()) - agent.running_loops)
        if dead:
            reasons.append(f"loop not running: {', '.join(dead)}")

    oldest = agent.oldest_undelivered_seconds()
    if oldest is not None and oldest > settings.report_stuck_after_seconds:
        reasons.append(f"oldest undelivered result is {oldest:.0f} s old (REPORT_STUCK_AFTER_SECONDS)")

    return Health(not reasons, reasons)
