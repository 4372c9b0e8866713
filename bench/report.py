"""The printout of each figure beside its target, and docs/benchmarks.md."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone

from .machine import Machine
from .results import BenchmarkResult, Verdict

HEADER = """\
# Benchmarks

These figures come from `python -m bench`, which runs trust-console against
the embedded hub on 127.0.0.1 and rewrites this page after a full run. Each
figure is the median of its runs, listed beside it; each ratio divides two
figures measured in the same round. Each benchmark runs in a Python process
of its own. The machine is shared, so repeat a run before trusting a small
difference.
"""

WIDTH = 78


def summary_lines(results: list[BenchmarkResult]) -> list[str]:
    """Return one line per figure, the value beside its target, for the terminal."""
    lines = []
    for result in results:
        lines.append(f"{result.title} ({result.seconds:.0f} s)")
        if result.error is not None:
            lines.append(f"  FAILED: {result.error.splitlines()[0]}")
            continue
        for figure in result.figures:
            target = figure.target.text if figure.target else ""
            verdict = figure.verdict.value if figure.target else ""
            lines.append(f"  {figure.label:<52} {figure.value_text():>18}   {target:<24} {verdict}")
    return lines


def _table(result: BenchmarkResult) -> list[str]:
    lines = ["| Figure | Median | Target | Verdict | Runs |", "|---|---|---|---|---|"]
    for figure in result.figures:
        target = figure.target.text if figure.target else ""
        verdict = "" if figure.verdict is Verdict.INFO else f"**{figure.verdict.value}**"
        runs = figure.runs_text()
        if figure.note:
            runs = f"{runs} ({figure.note})" if runs else figure.note
        lines.append(f"| {figure.label} | {figure.value_text()} | {target} | {verdict} | {runs} |")
    return lines


def reflow(text: str) -> str:
    """Wrap each paragraph and each `- ` list item of `text` to WIDTH columns."""
    blocks = []
    for block in text.strip().split("\n\n"):
        items: list[list[str]] = []
        for line in block.splitlines():
            if line.startswith("- ") or not items:
                items.append([line.strip()])
            else:
                items[-1].append(line.strip())
        wrapped = [
            textwrap.fill(
                " ".join(item),
                WIDTH,
                subsequent_indent="  " if item[0].startswith("- ") else "",
                break_long_words=False,
                break_on_hyphens=False,
            )
            for item in items
        ]
        blocks.append("\n".join(wrapped))
    return "\n\n".join(blocks)


def markdown(
    results: list[BenchmarkResult], machine: Machine, command: str, seconds: float, load_before: float
) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [HEADER]
    lines += [
        "## Machine",
        "",
        f"- CPU: {machine.cpu_model}, {machine.cores} cores (shared)",
        f"- Memory: {machine.memory_gb:.0f} GB",
        f"- Python: {machine.python}",
        f"- OS: {machine.system}",
        f"- STATE_DIR file system: {machine.filesystem}",
        f"- Libraries: {machine.libraries}",
        f"- Code: commit {machine.commit}",
        f"- Run: {when}, {seconds / 60:.1f} minutes; load average over the minute before it: {load_before:.2f}",
        "",
        "Command, from the repository root:",
        "",
        "```sh",
        command,
        "```",
        "",
        "## Summary",
        "",
        "| Benchmark | Figure | Median | Target | Verdict |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for figure in result.figures:
            if figure.target is None:
                continue
            lines.append(
                f"| {result.title} | {figure.label} | {figure.value_text()} | {figure.target.text}"
                f" | **{figure.verdict.value}** |"
            )
    lines.append("")

    for result in results:
        lines += [f"## {result.title}", "", reflow(result.method), ""]
        if result.error is not None:
            lines += ["The benchmark failed:", "", "```", result.error, "```", ""]
            continue
        lines += _table(result)
        lines.append("")
        lines += [f"- {note}" for note in result.notes]
        if result.notes:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
