"""A description of the machine and the code a run measured, for the report."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import textual


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cores: int
    memory_gb: float
    python: str
    system: str
    filesystem: str
    """The file system of the temporary STATE_DIRs, which receives the ledger's fsyncs."""
    libraries: str
    commit: str


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        name = release.get("PRETTY_NAME", "Linux")
    except OSError:
        name = platform.system()
    return f"{name}, kernel {platform.release()}"


def _filesystem(path: str) -> str:
    try:
        output = subprocess.run(
            ["df", "-T", path], capture_output=True, text=True, timeout=10, check=True
        ).stdout.splitlines()
        fields = output[-1].split()
        return f"{fields[1]} on {fields[0]}"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def _commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "console"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} with uncommitted changes under console/" if changes else head


def describe(root: Path) -> Machine:
    """Describe this machine and the code under `root`."""
    return Machine(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gb=_memory_gb(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        system=_os_name(),
        filesystem=_filesystem(tempfile.gettempdir()),
        libraries=f"httpx {httpx.__version__}, Textual {textual.__version__}, SQLite {sqlite3.sqlite_version}",
        commit=_commit(root),
    )
