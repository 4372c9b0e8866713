"""The demo console in a real terminal: scripts/tmux_demo_check.sh drives it under tmux and reads the pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "tmux_demo_check.sh"
TRUST_CONSOLE = Path(sys.executable).parent / "trust-console"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed, so the terminal check cannot run")
@pytest.mark.skipif(not TRUST_CONSOLE.exists(), reason=f"{TRUST_CONSOLE} is missing; install the project first")
def test_demo_under_tmux_answers_keys() -> None:
    environment = {**os.environ, "CHECK_TIMEOUT_SECONDS": "45"}
    completed = subprocess.run(
        ["bash", str(SCRIPT), str(TRUST_CONSOLE)], capture_output=True, text=True, timeout=60, env=environment
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok: the console quit with exit status 0" in completed.stdout
