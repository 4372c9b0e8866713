"""The `trust-console hub` command: serve the embedded hub in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
import time
from typing import TextIO

from console.hub.app import DEFAULT_API_KEY_HEADER
from console.hub.generator import TaskGenerator
from console.hub.ratelimit import RateLimits
from console.hub.server import EmbeddedHub

log = logging.getLogger(__name__)

DEMO_TRUST_NAME = "Demo Trust"
DEMO_TRUST_ID = "7a1c2e34-5b6d-4f80-9a1b-2c3d4e5f6a7b"

STARTUP_TIMEOUT_SECONDS = 10.0


def run_hub(
    port: int,
    api_key: str,
    trust_name: str = DEMO_TRUST_NAME,
    generate: bool = True,
    *,
    trust_id: str = DEMO_TRUST_ID,
    api_key_header: str = DEFAULT_API_KEY_HEADER,
    task_interval_seconds: float = 2.0,
    seed: int | None = None,
    rate_limits: RateLimits | None = None,
    aes_key_base64: str | None = None,
    output: TextIO | None = None,
) -> None:
    """Serve a hub with one trust on 127.0.0.1:`port` (0 picks a free port) until SIGINT or SIGTERM.

    Once listening it prints the API URL, key header, key and an enqueue example
    to `output` (stdout by default). With `generate`, diagnostic tasks arrive
    about every `task_interval_seconds`.
    """
    hub = EmbeddedHub(
        port=port,
        api_key=api_key,
        trust_name=trust_name,
        trust_id=trust_id,
        api_key_header=api_key_header,
        rate_limits=rate_limits,
        aes_key_base64=aes_key_base64,
    )
    generator = TaskGenerator(hub.store, interval_seconds=task_interval_seconds, seed=seed) if generate else None
    asyncio.run(_serve_until_signal(hub, generator, output if output is not None else sys.stdout))


async def _serve_until_signal(hub: EmbeddedHub, generator: TaskGenerator | None, output: TextIO) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        log.info("Received %s: stopping the hub", signal.Signals(signum).name)
        if generator is not None:
            generator.stop()
        hub.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)

    serving = asyncio.create_task(hub.serve(), name="embedded-hub")
    generating = None
    listening = False
    try:
        await _wait_until_listening(hub, serving)
        listening = True
        print(banner(hub), file=output, flush=True)
        if generator is not None:
            generating = asyncio.create_task(generator.run(), name="hub-task-generator")
        await serving
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if generator is not None:
            generator.stop()
        if generating is not None:
            generating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await generating
        if listening:
            print("Hub stopped.", file=output, flush=True)


async def _wait_until_listening(hub: EmbeddedHub, serving: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not hub.is_running:
        if serving.done():
            # serve() ended before it was listening: raise its error.
            serving.result()
            raise RuntimeError("The embedded hub stopped before it started listening")
        if time.monotonic() > deadline:
            hub.request_stop()
            raise TimeoutError(f"The embedded hub did not start within {STARTUP_TIMEOUT_SECONDS} s")
        await asyncio.sleep(0.01)


def banner(hub: EmbeddedHub) -> str:
    """Return the start-up text: where the API is, how to authenticate and how to add a task."""
    trust = hub.trust
    example = json.dumps({"task_type": "echo", "payload": {"message": "hello"}})
    lines = [
        f"Embedded FLIP hub listening on {hub.base_url}",
        f"  API URL:     {hub.api_url}",
        f"  Key header:  {hub.api_key_header}",
    ]
    if trust is not None:
        lines += [
            f"  API key:     {hub.api_key}",
            f"  Trust:       {trust.trust_name} ({trust.trust_id})",
        ]
    if hub.aes_key_fingerprint is not None:
        lines.append(f"  Payloads:    sealed with AES-256-GCM, key fingerprint {hub.aes_key_fingerprint}")
    lines += [
        f"  Admin URL:   {hub.admin_url} (no authentication; it listens on 127.0.0.1 only)",
        "Enqueue a task:",
        f"  curl -X POST {hub.admin_url}/tasks -H 'Content-Type: application/json' -d {shlex.quote(example)}",
        "Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)
