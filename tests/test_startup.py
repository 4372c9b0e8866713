"""Start-up guarantees that do not need a hub."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from console.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def loaded_packages(imports: str, packages: set[str]) -> subprocess.CompletedProcess[str]:
    """Import `imports` and build the parser in a fresh interpreter; it exits 1 if any of `packages` got loaded."""
    script = (
        "import sys\n"
        f"import {imports}\n"
        "console.cli.build_parser()\n"
        f"loaded = sorted({{name.split('.')[0] for name in sys.modules}} & {packages!r})\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_headless_startup_never_imports_textual() -> None:
    completed = loaded_packages("console.cli, console.headless, console.agent, console.demo", {"textual"})

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_headless_startup_skips_cli_libraries() -> None:
    # httpx's own command-line client would load these; a headless agent needs none of them.
    completed = loaded_packages("console.cli, console.headless, console.assembly", {"click", "rich", "pygments"})

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_example_env_documents_every_setting() -> None:
    text = (ROOT / "config.example.env").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))

    expected = {name.upper() for name in Settings.model_fields}

    assert expected - documented == set()
    assert documented - expected == set()


def test_help_lists_flags_but_not_the_key() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "console", "--help"], capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0
    assert "--poll-interval-seconds" in completed.stdout
    assert "--trust-api-key " not in completed.stdout
    assert "--trust-api-key-header" in completed.stdout


def test_unknown_enabled_type_exits_2(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CENTRAL_HUB_API_URL": "http://127.0.0.1:9/api",
        "TRUST_API_KEY": "key",
        "STATE_DIR": str(tmp_path / "state"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "console", "--headless", "--enabled-task-types", "echo,ecoh"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )

    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "ENABLED_TASK_TYPES is invalid: no handler for 'ecoh'" in lines[0]
