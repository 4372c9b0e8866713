"""The `trust-console` command.

`trust-console` opens the console on the agent; `--headless` runs the same
agent with logs only. `demo` and `hub` run the embedded hub. Textual is
imported only when a console is about to open, so servers running headless
never load it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .ledger import LedgerError, StateDirLocked, StateDirUnusable
from .records import TaskState
from .settings import Settings, SettingsError, env_name, load_settings, load_state_settings, secret_fields

EXIT_FAILURE = 1
EXIT_USAGE = 2

SECRET_FIELDS = secret_fields()
"""Settings never taken as flags, because a flag shows in the process list."""


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "settings", "Each flag overrides the environment variable of the same name, which overrides the env file."
    )
    for name, field in Settings.model_fields.items():
        if name in SECRET_FIELDS:
            continue
        flag = "--" + name.replace("_", "-")
        default = "" if field.is_required() else _describe_default(field.get_default())
        help_text = f"{field.description}{default} Environment: {env_name(name)}."
        # SUPPRESS keeps a subcommand's unset flag from overwriting the same flag given before the subcommand.
        if field.annotation is bool:
            group.add_argument(
                flag, dest=name, action="store_const", const=True, default=argparse.SUPPRESS, help=help_text
            )
        else:
            group.add_argument(flag, dest=name, metavar=env_name(name), default=argparse.SUPPRESS, help=help_text)


def _describe_default(value: Any) -> str:
    if value is None:
        return " Default: unset."
    if isinstance(value, bool):
        return f" Default: {str(value).lower()}."
    if isinstance(value, float):
        return f" Default: {value:g}."
    return f" Default: {value}."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trust-console",
        description=(
            "Outbound-only trust agent for a FLIP hub: heartbeats, polls for tasks, runs handlers and reports"
            " results, with a live console. TRUST_API_KEY is read from the environment or the env file only."
        ),
    )
    parser.add_argument("--version", action="version", version=f"trust-console {__version__}")
    parser.add_argument("--headless", action="store_true", help="Run without the console, logging to stderr.")
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="Read settings from this file (default: .env in the working directory, when it exists).",
    )
    _add_setting_flags(parser)

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="Run the agent against an embedded hub on loopback with a stream of tasks.")
    demo.add_argument("--headless", action="store_true", help="Run the demo without the console, logging to stderr.")
    demo.add_argument(
        "--task-interval",
        type=float,
        default=1.5,
        metavar="SECONDS",
        help="Seconds between tasks the demo hub enqueues (default: 1.5).",
    )

    hub = commands.add_parser(
        "hub",
        help="Run the embedded hub alone on loopback, for trying an agent against it.",
        description="With AES_KEY_BASE64 set in the environment, the hub encrypts every payload with that key.",
    )
    hub.add_argument("--port", type=int, default=8765, help="Loopback port to listen on (default: 8765; 0 picks one).")
    hub.add_argument(
        "--api-key",
        default="demo-trust-key",
        help="API key the hub accepts for its one trust (default: demo-trust-key).",
    )
    hub.add_argument("--generate", action="store_true", help="Enqueue a steady stream of demo tasks.")

    check = commands.add_parser(
        "check",
        help="Check the settings, send one heartbeat, compare key fingerprints and probe the local services.",
        description="Exit code 0 when every check passes, 1 when one fails, 2 for invalid settings.",
    )
    check.add_argument("--env-file", type=Path, default=argparse.SUPPRESS, help="Read settings from this file.")
    _add_setting_flags(check)

    tasks = commands.add_parser("tasks", help="List the tasks in the ledger of STATE_DIR, newest first.")
    tasks.add_argument(
        "--state",
        choices=[state.value.replace(" ", "-") for state in TaskState] + ["stuck", "failed"],
        help="Show only tasks in this state; failed means the handler failed, whatever the report's state.",
    )
    tasks.add_argument("--limit", type=int, default=50, help="Show at most this many tasks (default: 50).")

    retry = commands.add_parser("retry", help="Send a failed or stuck report again now (works while the agent runs).")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("task_id", nargs="?", help="The task whose report to send again.")
    target.add_argument("--all-stuck", action="store_true", help="Retry every stuck report.")

    rerun = commands.add_parser(
        "rerun", help="Run a failed task again before its failure is delivered (works while the agent runs)."
    )
    rerun.add_argument("task_id", help="The failed task to run again.")

    attach = commands.add_parser(
        "attach", help="Open the console on an agent already running headless on the same STATE_DIR."
    )

    for command in (tasks, retry, rerun, attach):
        command.add_argument(
            "--state-dir", type=Path, default=argparse.SUPPRESS, help="The agent's STATE_DIR (default: state)."
        )
        command.add_argument("--env-file", type=Path, default=argparse.SUPPRESS, help="Read STATE_DIR from this file.")
    return parser


def _setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in Settings.model_fields if name not in SECRET_FIELDS}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        return run_demo(headless=args.headless, task_interval_seconds=args.task_interval)

    if args.command == "hub":
        from .hub import run_hub

        try:
            run_hub(
                port=args.port,
                api_key=args.api_key,
                generate=args.generate,
                aes_key_base64=os.environ.get("AES_KEY_BASE64") or None,
            )
        except OSError as error:
            print(f"trust-console: cannot listen on 127.0.0.1:{args.port} ({error.strerror}); try --port 0", file=sys.stderr)
            return EXIT_USAGE
        return 0

    if args.command in ("tasks", "retry", "rerun", "attach"):
        try:
            state = load_state_settings({"state_dir": getattr(args, "state_dir", None)}, env_file=args.env_file)
        except SettingsError as error:
            print(f"trust-console: {error}", file=sys.stderr)
            return EXIT_USAGE
        if args.command == "attach":
            return run_attached_console(state.state_dir)

        from .ledger_commands import run_ledger_command

        return run_ledger_command(args, state.state_dir)

    try:
        settings = load_settings(_setting_overrides(args), env_file=args.env_file)
    except SettingsError as error:
        print(f"trust-console: {error}", file=sys.stderr)
        return EXIT_USAGE

    if args.command == "check":
        from .check import run_check

        return run_check(settings)

    try:
        if args.headless:
            return run_agent_headless(settings)
        return run_agent_console(settings)
    except (StateDirLocked, StateDirUnusable, SettingsError) as error:
        print(f"trust-console: {error}", file=sys.stderr)
        return EXIT_USAGE
    except LedgerError as error:
        # A full disk or a damaged file: not a configuration error, so a service manager may restart.
        print(f"trust-console: {error}", file=sys.stderr)
        return EXIT_FAILURE


def run_agent_headless(settings: Settings) -> int:
    from .headless import run_headless
    from .log_setup import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    return asyncio.run(run_headless(settings))


def run_agent_console(settings: Settings) -> int:
    from .assembly import build_agent
    from .tui import TrustConsoleApp

    agent = build_agent(settings)
    TrustConsoleApp(agent).run()
    return agent.exit_code



def run_attached_console(state_dir: Path) -> int:
    from .attach import AttachedAgent, NoAgentRunning

    try:
        agent = AttachedAgent(state_dir)
    except NoAgentRunning as error:
        print(f"trust-console: {error}", file=sys.stderr)
        return 1
    if agent.settings is None:
        agent.ledger.close()
        print(f"trust-console: the agent on {state_dir} has not reported its status yet; try again in a second", file=sys.stderr)
        return 1

    from .tui import TrustConsoleApp

    TrustConsoleApp(agent, title=f"trust-console (attached to {state_dir})").run()  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
