"""`trust-console demo`: the agent against an embedded FLIP hub and demo trust services, all on loopback.

The hub seals every payload with a random AES-256 key, and the agent gets the
same key. The hub hands out FLIP's task types for the demo's data-access-api
and imaging-api, mixed with diagnostic tasks (long sleeps, failures, unknown
types), so the console shows every state.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .demo_services import DemoTrustServices
from .demo_services.tasks import DemoTaskMix
from .hub import EmbeddedHub, HubStore, TaskGenerator
from .hub.standalone import DEMO_TRUST_ID, DEMO_TRUST_NAME
from .settings import Settings

log = logging.getLogger(__name__)

HEALTH_COLLECT_INTERVAL_SECONDS = 10.0

# Tasks waiting at start, so the table fills at once: FLIP task types that succeed and fail,
# a long sleep, a failure and a type this trust does not handle.
OPENING_FLIP_TASKS = ("create_imaging", "cohort_query", "get_imaging_status", "update_user_profile", "persist_cohort")
OPENING_FAILING_FLIP_TASKS = ("cohort_query", "delete_imaging")
OPENING_DIAGNOSTIC_TASKS: list[tuple[str, dict[str, Any]]] = [
    ("sleep", {"seconds": 25}),
    ("fail", {"message": "imaging-api returned 503"}),
    ("echo", {"message": "short tasks run beside long ones"}),
    ("radiology_export", {"study": "not handled by this trust"}),
]


@dataclass
class DemoEnvironment:
    """Everything the demo starts besides the agent: hub, task generator and trust services."""

    hub: EmbeddedHub
    generator: TaskGenerator
    services: DemoTrustServices
    api_key: str
    aes_key_base64: str

    def stop(self) -> None:
        self.generator.stop()
        self.hub.stop()
        self.services.stop()


def demo_settings(api_url: str, api_key: str, state_dir: Path, **overrides: Any) -> Settings:
    """Build settings for an agent on the embedded hub, with intervals short enough to watch."""
    values: dict[str, Any] = {
        "central_hub_api_url": api_url,
        "trust_api_key": SecretStr(api_key),
        "expected_trust_id": DEMO_TRUST_ID,
        "poll_interval_seconds": 2.0,
        "heartbeat_interval_seconds": 5.0,
        "health_collect_interval_seconds": HEALTH_COLLECT_INTERVAL_SECONDS,
        "state_dir": state_dir,
        "handler_timeout_seconds": 120.0,
        "drain_timeout_seconds": 90.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def start_demo(task_interval_seconds: float, seed: int | None = None) -> DemoEnvironment:
    """Start the trust services, then the hub with its opening tasks and a task generator, on free loopback ports."""
    services = DemoTrustServices(seed=seed).start()
    aes_key_base64 = base64.b64encode(os.urandom(32)).decode()
    api_key = f"demo-{secrets.token_urlsafe(16)}"
    try:
        hub = EmbeddedHub(
            HubStore(),
            api_key=api_key,
            trust_name=DEMO_TRUST_NAME,
            trust_id=DEMO_TRUST_ID,
            aes_key_base64=aes_key_base64,
        ).start()
    except BaseException:
        services.stop()
        raise

    mix = DemoTaskMix(DEMO_TRUST_ID, services.imaging)
    opening = random.Random(seed)
    for task_type in OPENING_FLIP_TASKS:
        hub.store.enqueue(task_type, mix.payload(task_type, opening))
    for task_type in OPENING_FAILING_FLIP_TASKS:
        hub.store.enqueue(task_type, mix.failing_payload(task_type, opening))
    for task_type, payload in OPENING_DIAGNOSTIC_TASKS:
        hub.store.enqueue(task_type, json.dumps(payload))
    generator = TaskGenerator(hub.store, interval_seconds=task_interval_seconds, seed=seed, draw=mix).start()
    return DemoEnvironment(hub, generator, services, api_key, aes_key_base64)


def run_demo(headless: bool, task_interval_seconds: float = 1.5) -> int:
    """Run the demo until the operator quits; return the exit code."""
    demo = start_demo(task_interval_seconds)
    try:
        with tempfile.TemporaryDirectory(prefix="trust-console-demo-") as state_dir:
            settings = demo_settings(
                demo.hub.api_url,
                demo.api_key,
                Path(state_dir),
                aes_key_base64=SecretStr(demo.aes_key_base64),
                data_access_api_url=demo.services.data_access_api_url,
                imaging_api_url=demo.services.imaging_api_url,
                trust_internal_service_key=SecretStr(demo.services.internal_key),
            )
            if headless:
                from .headless import run_headless
                from .log_setup import configure_logging

                configure_logging()
                log.info(
                    "demo hub listening at %s; demo trust services at %s and %s",
                    demo.hub.api_url,
                    demo.services.data_access_api_url,
                    demo.services.imaging_api_url,
                )
                return asyncio.run(run_headless(settings))

            from .cli import run_agent_console

            return run_agent_console(settings)
    finally:
        demo.stop()
