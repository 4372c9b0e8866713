"""`trust-console demo`: the agent against an embedded hub on loopback, fed a steady stream of tasks."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .hub import EmbeddedHub, HubStore, TaskGenerator
from .hub.standalone import DEMO_TRUST_ID, DEMO_TRUST_NAME
from .settings import Settings

log = logging.getLogger(__name__)

# A few tasks waiting at start, so the table fills at once: quick, long, failing and unknown.
OPENING_TASKS: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"message": "hello from the demo hub"}),
    ("sleep", {"seconds": 25}),
    ("echo", {"message": "short tasks run beside long ones"}),
    ("fail", {"message": "imaging-api returned 503"}),
    ("sleep", {"seconds": 2}),
    ("radiology_export", {"study": "not handled by this trust"}),
]


def demo_settings(api_url: str, api_key: str, state_dir: Path, **overrides: Any) -> Settings:
    """Build settings for an agent on the embedded hub, with intervals short enough to watch."""
    values: dict[str, Any] = {
        "central_hub_api_url": api_url,
        "trust_api_key": SecretStr(api_key),
        "expected_trust_id": DEMO_TRUST_ID,
        "poll_interval_seconds": 2.0,
        "heartbeat_interval_seconds": 5.0,
        "state_dir": state_dir,
        "handler_timeout_seconds": 120.0,
        "drain_timeout_seconds": 90.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def start_demo_hub(task_interval_seconds: float) -> tuple[EmbeddedHub, TaskGenerator, str]:
    """Start the hub on a free loopback port with the opening tasks and a generator; return the key too."""
    api_key = f"demo-{secrets.token_urlsafe(16)}"
    hub = EmbeddedHub(HubStore(), api_key=api_key, trust_name=DEMO_TRUST_NAME, trust_id=DEMO_TRUST_ID)
    hub.start()
    for task_type, payload in OPENING_TASKS:
        hub.store.enqueue(task_type, payload)
    generator = TaskGenerator(hub.store, interval_seconds=task_interval_seconds).start()
    return hub, generator, api_key


def run_demo(headless: bool, task_interval_seconds: float = 1.5) -> int:
    """Run the demo until the operator quits; return the exit code."""
    hub, generator, api_key = start_demo_hub(task_interval_seconds)
    try:
        with tempfile.TemporaryDirectory(prefix="trust-console-demo-") as state_dir:
            settings = demo_settings(hub.api_url, api_key, Path(state_dir))
            if headless:
                from .headless import run_headless
                from .log_setup import configure_logging

                configure_logging()
                log.info("demo hub listening at %s", hub.api_url)
                return asyncio.run(run_headless(settings))

            from .cli import run_agent_console

            return run_agent_console(settings)
    finally:
        generator.stop()
        hub.stop()
