"""`trust-console check` against the embedded hub."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from console.hub import EmbeddedHub


def run_check(api_url: str, api_key: str, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CENTRAL_HUB_API_URL": api_url, "TRUST_API_KEY": api_key}
    return subprocess.run(
        [sys.executable, "-m", "console", "check", "--enabled-task-types", "echo,sleep", *flags],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_good_key(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    completed = run_check(embedded_hub.api_url, api_key, tmp_path, "--expected-trust-id", embedded_hub.trust.trust_id)

    assert completed.returncode == 0, completed.stdout
    assert f"trust Test Trust ({embedded_hub.trust.trust_id})" in completed.stdout
    assert "trust id matches EXPECTED_TRUST_ID" in completed.stdout
    assert len(embedded_hub.store.records.heartbeats()) == 1


def test_check_wrong_key(embedded_hub: EmbeddedHub, tmp_path: Path) -> None:
    completed = run_check(embedded_hub.api_url, "not-the-key", tmp_path)

    assert completed.returncode == 1
    assert "FAIL  the hub rejected the API key (401)" in completed.stdout
    assert "TRUST_API_KEY_HEADER" in completed.stdout
    assert "not-the-key" not in completed.stdout + completed.stderr


def test_check_wrong_trust(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    completed = run_check(embedded_hub.api_url, api_key, tmp_path, "--expected-trust-id", "00000000-0000-4000-8000-000000000000")

    assert completed.returncode == 1
    assert "wrong key for this trust" in completed.stdout


def test_check_no_hub(tmp_path: Path) -> None:
    completed = run_check(f"http://127.0.0.1:{closed_port()}/api", "key", tmp_path)

    assert completed.returncode == 1
    assert "cannot reach the hub" in completed.stdout


def test_check_url_without_api_prefix(embedded_hub: EmbeddedHub, api_key: str, tmp_path: Path) -> None:
    completed = run_check(embedded_hub.base_url, api_key, tmp_path)

    assert completed.returncode == 1
    assert "includes the API prefix" in completed.stdout


def test_check_invalid_settings_exit_2(tmp_path: Path) -> None:
    completed = run_check("ftp://hub", "key", tmp_path)

    assert completed.returncode == 2
    assert "CENTRAL_HUB_API_URL is invalid" in completed.stderr
