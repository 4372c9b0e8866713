"""One run of a trust-console process or a comparison loop against a fresh embedded hub."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.hub import EmbeddedHub

from .hubs import embedded_hub, wait_until
from .processes import agent_environment, launch, python_module_command, stop, trust_console_command
from .results import BenchError

ECHO_PAYLOAD = {
    "query_id": "6c1f0a9e-1f2b-4c3d-9e8f-0a1b2c3d4e5f",
    "query_name": "CT studies in 2024",
    "query": "SELECT count(*) FROM imaging_studies WHERE modality = 'CT' AND study_date >= '2024-01-01'",
    "trust_id": "0b9a3f27-6f0e-4c55-8f7e-2b1d9c4a7e10",
}
"""A payload shaped like FLIP's cohort_query, about 250 bytes; `echo` returns it as the result."""

ROOT = Path(__file__).resolve().parent.parent

START_SECONDS = 15.0
"""Maximum seconds to wait for a child's first heartbeat or poll before the run counts as failed."""


@dataclass
class Workspace:
    """A fresh hub and a temporary directory for one run's STATE_DIR and logs."""

    hub: EmbeddedHub
    directory: Path

    @property
    def log_path(self) -> Path:
        return self.directory / "output.log"

    def log_tail(self, characters: int = 2000) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text(errors="replace")[-characters:]

    def start_headless(self, **settings: Any) -> subprocess.Popen[bytes]:
        """Start `trust-console --headless` with default settings except `settings`."""
        environment = agent_environment(self.hub, self.directory / "state", **settings)
        return launch([*trust_console_command(), "--headless"], environment, self.directory, self.log_path)

    def start_module(self, module: str, *arguments: str, **settings: Any) -> subprocess.Popen[bytes]:
        """Start `python -m module` with the hub's URL and key in its environment."""
        environment = agent_environment(self.hub, self.directory / "state", **settings)
        # The working directory is the temporary one, so the bench package is found through PYTHONPATH.
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
        return launch(python_module_command(module, *arguments), environment, self.directory, self.log_path)

    def fail(self, message: str) -> BenchError:
        return BenchError(f"{message}; output:\n{self.log_tail()}")


@contextlib.contextmanager
def workspace() -> Iterator[Workspace]:
    with embedded_hub() as hub, tempfile.TemporaryDirectory(prefix="trust-console-bench-") as directory:
        yield Workspace(hub, Path(directory))


@contextlib.contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Stop the process when the block ends, also when the block raises."""
    try:
        yield process
    finally:
        stop(process)


def wait_for_heartbeat(space: Workspace, process: subprocess.Popen[bytes], timeout: float = START_SECONDS) -> None:
    """Wait until the hub has accepted a heartbeat; raise BenchError if the process exits or times out."""
    records = space.hub.store.records
    started = wait_until(
        lambda: records.count_requests("heartbeat", 200) > 0 or process.poll() is not None, timeout
    )
    if process.poll() is not None:
        raise space.fail(f"the process exited with code {process.returncode} before its first heartbeat")
    if not started or records.count_requests("heartbeat", 200) == 0:
        raise space.fail(f"no heartbeat within {timeout:g} s")


def wait_for_poll(space: Workspace, process: subprocess.Popen[bytes], timeout: float = START_SECONDS) -> None:
    """Wait until the hub has replied to a poll, so the next poll comes one poll interval later."""
    records = space.hub.store.records
    wait_until(lambda: records.count_requests("pending", 200) > 0 or process.poll() is not None, timeout)
    if records.count_requests("pending", 200) == 0:
        raise space.fail(f"no poll within {timeout:g} s")
