"""The embedded hub: a real HTTP server on 127.0.0.1 that speaks FLIP's hub protocol.

The demo, the integration tests and the benchmarks run the agent against it.
Nothing here imports Textual or the agent.
"""

from console.hub.app import DEFAULT_API_KEY_HEADER, HUB_VERSION, create_app
from console.hub.faults import FaultInjector, MalformedKind
from console.hub.generator import TaskDraw, TaskGenerator, draw_diagnostic_task
from console.hub.models import Endpoint, Task, TaskStatus, TrustIdentity
from console.hub.ratelimit import RateLimiter, RateLimits
from console.hub.records import CohortRecord, HeartbeatRecord, RecordLog, RequestRecord, ResultRecord
from console.hub.server import EmbeddedHub
from console.hub.standalone import DEMO_TRUST_ID, DEMO_TRUST_NAME, run_hub
from console.hub.store import HubStore, ResultOutcome, StaleRecovery

__all__ = [
    "DEFAULT_API_KEY_HEADER",
    "DEMO_TRUST_ID",
    "DEMO_TRUST_NAME",
    "HUB_VERSION",
    "CohortRecord",
    "EmbeddedHub",
    "Endpoint",
    "FaultInjector",
    "HeartbeatRecord",
    "HubStore",
    "MalformedKind",
    "RateLimiter",
    "RateLimits",
    "RecordLog",
    "RequestRecord",
    "ResultOutcome",
    "ResultRecord",
    "StaleRecovery",
    "Task",
    "TaskDraw",
    "TaskGenerator",
    "TaskStatus",
    "TrustIdentity",
    "create_app",
    "draw_diagnostic_task",
    "run_hub",
]
