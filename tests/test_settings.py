"""Settings precedence and start-up errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.settings import SettingsError, load_settings

HUB = "https://hub.example.org/api"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CENTRAL_HUB_API_URL", "TRUST_API_KEY", "POLL_INTERVAL_SECONDS", "ENABLED_TASK_TYPES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_flag_beats_environment_beats_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_text(f"CENTRAL_HUB_API_URL={HUB}\nTRUST_API_KEY=from-file\nPOLL_INTERVAL_SECONDS=9\n")

    assert load_settings(env_file=env_file).poll_interval_seconds == 9

    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "7")
    assert load_settings(env_file=env_file).poll_interval_seconds == 7

    settings = load_settings({"poll_interval_seconds": "3"}, env_file=env_file)
    assert settings.poll_interval_seconds == 3
    assert settings.trust_api_key.get_secret_value() == "from-file"


def test_dot_env_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"CENTRAL_HUB_API_URL={HUB}/\nTRUST_API_KEY=k\n")

    settings = load_settings()

    assert settings.central_hub_api_url == HUB
    assert settings.trust_api_key_header == "X-Trust-API-Key"
    assert settings.max_concurrent_tasks == 4
    assert settings.poll_interval_seconds == 5
    assert settings.heartbeat_interval_seconds == 5


def test_enabled_task_types_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRAL_HUB_API_URL", HUB)
    monkeypatch.setenv("TRUST_API_KEY", "k")
    monkeypatch.setenv("ENABLED_TASK_TYPES", " echo, sleep ,,")

    assert load_settings().enabled_task_types == ["echo", "sleep"]


def test_missing_setting_names_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"trust_api_key": "k"})

    assert str(raised.value).startswith("CENTRAL_HUB_API_URL is missing")


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"poll_interval_seconds": "-1"}, "POLL_INTERVAL_SECONDS"),
        ({"max_concurrent_tasks": "many"}, "MAX_CONCURRENT_TASKS"),
        ({"expected_trust_id": "not-a-uuid"}, "EXPECTED_TRUST_ID"),
        ({"central_hub_api_url": "ftp://hub"}, "CENTRAL_HUB_API_URL"),
        ({"central_hub_api_url": "http://hub.example.org/api"}, "CENTRAL_HUB_API_URL"),
    ],
)
def test_invalid_setting_names_variable(overrides: dict[str, str], variable: str) -> None:
    values = {"central_hub_api_url": HUB, "trust_api_key": "k", **overrides}

    with pytest.raises(SettingsError) as raised:
        load_settings(values)

    assert str(raised.value).startswith(f"{variable} is invalid")
    assert "\n" not in str(raised.value)


def test_plain_http_allowed_on_loopback_or_when_set() -> None:
    assert load_settings({"central_hub_api_url": "http://127.0.0.1:9/api", "trust_api_key": "k"})
    assert load_settings(
        {"central_hub_api_url": "http://hub.internal/api", "trust_api_key": "k", "allow_insecure_http": True}
    )


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env_file=tmp_path / "nope.env")

    assert "nope.env" in str(raised.value)


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CENTRAL_HUB_API_URL": HUB, "TRUST_API_KEY": "very-secret-key"}
    completed = subprocess.run(
        [sys.executable, "-m", "console", "--headless", "--poll-interval-seconds", "zero"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )

    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "POLL_INTERVAL_SECONDS is invalid" in lines[0]
    assert "very-secret-key" not in completed.stderr


def test_key_from_file_with_newline_is_stripped() -> None:
    settings = load_settings({"central_hub_api_url": HUB, "trust_api_key": "secret-key\n"})

    assert settings.trust_api_key.get_secret_value() == "secret-key"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"trust_api_key": "kéy"}, "TRUST_API_KEY"),
        ({"trust_api_key_header": "X Trust"}, "TRUST_API_KEY_HEADER"),
        ({"central_hub_api_url": "https://hub.example.org:99999/api"}, "CENTRAL_HUB_API_URL"),
        ({"poll_interval_seconds": "inf"}, "POLL_INTERVAL_SECONDS"),
        ({"ledger_retention_days": "1000000"}, "LEDGER_RETENTION_DAYS"),
    ],
)
def test_unusable_values_rejected(overrides: dict[str, str], variable: str) -> None:
    values = {"central_hub_api_url": HUB, "trust_api_key": "k", **overrides}

    with pytest.raises(SettingsError) as raised:
        load_settings(values)

    assert str(raised.value).startswith(f"{variable} is invalid")


def test_url_password_not_echoed() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"central_hub_api_url": "https://trust:hunter2@hub.example.org/api", "trust_api_key": "k"})

    assert "user name or password" in str(raised.value)
    assert "hunter2" not in str(raised.value)
