"""The service files agree with the agent's defaults."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from console.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DRAIN = Settings.model_fields["drain_timeout_seconds"].default


def test_systemd_unit_outlasts_drain() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / "trust-console.service")
    service = unit["Service"]

    assert float(service["TimeoutStopSec"]) > DRAIN
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"
    assert service["StateDirectory"] == "trust-console"
    assert service["StateDirectoryMode"] == "0700"
    assert "EnvironmentFile" in service
    assert "--headless" in service["ExecStart"]
    assert service["User"] != "root"


def test_container_runs_unprivileged_with_state_volume() -> None:
    text = (DEPLOY / "Containerfile").read_text()

    assert re.search(r"^USER trust-console$", text, re.MULTILINE)
    assert 'VOLUME ["/var/lib/trust-console"]' in text
    assert "STATE_DIR=/var/lib/trust-console" in text
    assert '"--headless"' in text


def test_compose_grace_outlasts_drain() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    grace = re.search(r"stop_grace_period:\s*(\d+)s", text)

    assert grace is not None
    assert int(grace.group(1)) > DRAIN
    assert "/var/lib/trust-console" in text
