"""Child processes: trust-console headless or in a pseudo-terminal, the comparison loops, and /proc readings.

Every child gets the kernel's parent-death signal (SIGKILL, through
`setpriv --pdeathsig`), so none outlives a benchmark that crashes. Its
settings come from a clean environment, and it runs in a temporary working
directory, so no `.env` file or exported setting of the developer's shell
leaks in.
"""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.hub import EmbeddedHub
from console.settings import Settings

from .hubs import API_KEY

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOOPBACK_SERVICE_URL = "http://127.0.0.1:9"
"""Port 9 (discard) is closed here; a request to it fails at once without leaving the machine."""
STOP_SECONDS = 10.0
"""How long a child may take to exit after SIGTERM before it is killed."""


def trust_console_command() -> list[str]:
    """Return the installed `trust-console` script of this interpreter's environment."""
    script = Path(sys.executable).with_name("trust-console")
    if not script.exists():
        raise FileNotFoundError(f"{script} not found; install the project with `make` or `pip install -e .`")
    return [str(script)]


def agent_environment(hub: EmbeddedHub, state_dir: Path, **settings: Any) -> dict[str, str]:
    """Build a child's environment: the inherited one without agent settings or proxies, plus these settings."""
    setting_names = {name.upper() for name in Settings.model_fields}
    environment = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in setting_names and not name.lower().endswith("_proxy")
    }
    environment.update(
        {
            "CENTRAL_HUB_API_URL": hub.api_url,
            "TRUST_API_KEY": API_KEY,
            "STATE_DIR": str(state_dir),
            # Loopback only: no proxy may carry a request anywhere else, and the trust's local
            # services point at a closed loopback port, so no handler can reach another host.
            "NO_PROXY": "*",
            "DATA_ACCESS_API_URL": LOOPBACK_SERVICE_URL,
            "IMAGING_API_URL": LOOPBACK_SERVICE_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update({name.upper(): str(value) for name, value in settings.items()})
    return environment


def _with_parent_death_signal(command: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "KILL", *command]


def launch(
    command: list[str], environment: dict[str, str], cwd: Path, log_path: Path, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a child with stdout and stderr appended to `log_path`."""
    log_file = log_path.open("ab")
    try:
        return subprocess.Popen(
            _with_parent_death_signal(command),
            env=environment,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            **popen,
        )
    finally:
        log_file.close()


def stop(process: subprocess.Popen[Any], drain_seconds: float = 2.0) -> int:
    """Stop a child and return its exit code.

    trust-console drains on the first SIGTERM and stops at once on the
    second, so the second follows after `drain_seconds`; SIGKILL follows
    STOP_SECONDS later.
    """
    for wait_seconds in (drain_seconds, STOP_SECONDS):
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            pass
    if process.poll() is None:
        process.kill()
    return process.wait(STOP_SECONDS)


def python_module_command(module: str, *arguments: str) -> list[str]:
    return [sys.executable, "-m", module, *arguments]


@dataclass(frozen=True)
class ProcessReading:
    """One reading of a process from /proc: CPU seconds used so far and memory in bytes."""

    at: float
    """time.monotonic() when it was read."""
    cpu_seconds: float
    """utime + stime."""
    rss_bytes: int
    """VmRSS: resident memory now."""
    peak_rss_bytes: int
    """VmHWM: the largest resident memory so far."""


def read_process(pid: int) -> ProcessReading:
    """Read a process's CPU time and resident memory from /proc/<pid>/stat and /proc/<pid>/status."""
    at = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which may contain spaces, start after its closing bracket.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    memory: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            memory[name] = int(value.split()[0]) * 1024
    return ProcessReading(at, (utime + stime) / CLOCK_TICKS, memory["VmRSS"], memory["VmHWM"])


class PseudoTerminal:
    """A child process whose stdin, stdout and stderr are a pseudo-terminal of a fixed size.

    A thread reads everything the child writes, as a terminal emulator would,
    so the child never blocks on a full buffer. It counts the bytes for the report.
    """

    def __init__(
        self, command: list[str], environment: dict[str, str], cwd: Path, columns: int = 140, rows: int = 40
    ) -> None:
        primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        environment = {**environment, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
        try:
            self.process = subprocess.Popen(
                _with_parent_death_signal(command),
                env=environment,
                cwd=cwd,
                stdin=secondary,
                stdout=secondary,
                stderr=secondary,
                start_new_session=True,
            )
        finally:
            os.close(secondary)
        self._primary = primary
        self.bytes_read = 0
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._primary, 65536)
            except OSError:
                return  # EIO once the child has closed its side.
            if not chunk:
                return
            self.bytes_read += len(chunk)

    def type(self, text: str) -> None:
        """Send keystrokes to the child."""
        os.write(self._primary, text.encode())

    def close(self, quit_keys: str = "q", timeout: float = STOP_SECONDS) -> int:
        """Press `quit_keys`, wait up to `timeout` seconds for the child, then stop it; return its exit code."""
        if self.process.poll() is None:
            try:
                self.type(quit_keys)
                self.process.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        code = stop(self.process)
        self._reader.join(1.0)
        os.close(self._primary)
        return code
