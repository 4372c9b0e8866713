"""`python -m bench`: run the benchmarks, print each figure beside its target, write the report."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

from .machine import describe
from .report import markdown, summary_lines
from .results import BenchError, BenchmarkResult
from .scale import FULL, QUICK, Scale

ROOT = Path(__file__).resolve().parent.parent
REPORT_PATH = ROOT / "docs" / "benchmarks.md"

BENCHMARKS = {
    "drain": "bench.drain",
    "head-of-line": "bench.head_of_line",
    "heartbeat": "bench.heartbeat",
    "idle": "bench.idle",
    "console": "bench.console_scale",
    "startup": "bench.startup",
    "delivery": "bench.delivery",
}
"""Each benchmark's name and module, in the order they run; a module has TITLE and run(scale, progress).

Modules are imported only when selected, so a benchmark whose code cannot be
imported fails alone.
"""

EXIT_OK = 0
EXIT_FAILED = 1
"""A benchmark could not produce its figures; a missed target is a result, not a failure."""


def build_parser(names: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Benchmark trust-console against the embedded hub on 127.0.0.1. A full run takes about 8 minutes"
            f" and rewrites {REPORT_PATH.relative_to(ROOT)}; --quick and --only only print, unless --output is given."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="Run smaller and shorter versions (about 4 minutes).")
    parser.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"Run only this benchmark; repeat for several. Names: {', '.join(names)}.",
    )
    parser.add_argument("--runs", type=int, default=None, help="Repeat each measurement this many times (default: 3).")
    parser.add_argument(
        "--output", type=Path, default=None, help="Write the Markdown report here (default: docs/benchmarks.md on a full run)."
    )
    return parser


def run_isolated(name: str, scale: Scale) -> BenchmarkResult:
    """Run one benchmark in a Python process of its own and return its result.

    The console benchmark runs the console in the benchmark's process, where
    objects and threads left by earlier benchmarks would slow it down. A
    fresh process for each benchmark keeps them apart.
    """
    with tempfile.TemporaryDirectory(prefix="trust-console-bench-") as directory:
        request = Path(directory) / "request.pickle"
        response = Path(directory) / "result.pickle"
        request.write_bytes(pickle.dumps((name, scale)))
        completed = subprocess.run([sys.executable, "-m", "bench.isolated", str(request), str(response)], cwd=ROOT)
        if not response.exists():
            return BenchmarkResult(name, name, "", error=f"the benchmark process exited with code {completed.returncode}")
        result: BenchmarkResult = pickle.loads(response.read_bytes())
        return result


def run_one(name: str, scale: Scale) -> BenchmarkResult:
    def progress(message: str) -> None:
        print(f"  [{name}] {message}", flush=True)

    print(f"{name} ...", flush=True)
    started = time.monotonic()
    title = name
    try:
        module = importlib.import_module(BENCHMARKS[name])
        title = module.TITLE
        result: BenchmarkResult = module.run(scale, progress)
    except BenchError as error:
        result = BenchmarkResult(name, title, "", error=str(error))
    except Exception:
        result = BenchmarkResult(name, title, "", error=traceback.format_exc())
    result.seconds = time.monotonic() - started
    for line in summary_lines([result]):
        print(line, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    arguments = build_parser(list(BENCHMARKS)).parse_args(argv)
    scale = QUICK if arguments.quick else FULL
    if arguments.runs is not None:
        if arguments.runs < 1:
            print("python -m bench: --runs must be at least 1", file=sys.stderr)
            return 2
        scale = replace(scale, runs=arguments.runs)
    selected = arguments.only or list(BENCHMARKS)
    output = arguments.output
    if output is None and not arguments.quick and arguments.only is None:
        output = REPORT_PATH

    load_before = os.getloadavg()[0]
    # The code is described before the run, since other work may change it while the run goes on.
    machine = describe(ROOT)
    started = time.monotonic()
    results = [run_isolated(name, scale) for name in selected]
    seconds = time.monotonic() - started

    print()
    print(f"All figures ({scale.name} run, {seconds / 60:.1f} minutes):")
    for line in summary_lines(results):
        print(line)

    if output is not None:
        shown_arguments = " ".join(sys.argv[1:] if argv is None else argv)
        command = f".venv/bin/python -m bench {shown_arguments}".rstrip()
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown(results, machine, command, seconds, load_before))
        print(f"\nReport written to {output}")
    return EXIT_FAILED if any(result.error is not None for result in results) else EXIT_OK
