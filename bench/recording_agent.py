"""`python -m bench.recording_agent FILE`: `trust-console --headless` that also records when handlers finish.

It runs the real headless host and adds one subscriber to the agent's event
bus, which keeps each TaskFinished event's task id and time in memory. When
the agent exits, the events go to FILE as JSON lines, so recording adds no
file I/O while the agent works.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import console.headless
from console.agent import Agent
from console.cli import main as trust_console_main
from console.events import AgentEvent, EventBus, TaskFinished
from console.settings import Settings

finished: list[dict[str, object]] = []
_build_agent = console.headless.build_agent


def _record(event: AgentEvent) -> None:
    if isinstance(event, TaskFinished):
        finished.append({"task_id": event.task_id, "at": event.at.timestamp()})


def _build_recording_agent(settings: Settings, bus: EventBus | None = None) -> Agent:
    agent = _build_agent(settings, bus)
    agent.bus.subscribe(_record)
    return agent


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m bench.recording_agent FILE", file=sys.stderr)
        return 2
    console.headless.build_agent = _build_recording_agent
    try:
        return trust_console_main(["--headless"])
    finally:
        lines = "".join(json.dumps(event) + "\n" for event in finished)
        Path(sys.argv[1]).write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
