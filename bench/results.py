"""Figures, their targets and the verdicts, shared by every benchmark, the printout and the report."""

from __future__ import annotations

import enum
import operator
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


MAX_RUNS_LISTED = 10
"""Figures with more runs than this show their range instead of every run."""


class BenchError(Exception):
    """A benchmark could not produce a figure: the agent, a client or the hub did not behave as expected."""


class Verdict(enum.StrEnum):
    MET = "met"
    MISSED = "missed"
    INFO = "-"
    """The figure has no target of its own; it is there for comparison or diagnosis."""


@dataclass(frozen=True)
class Target:
    """A bound that a figure must stay on the right side of, such as `< 1.0 s`."""

    comparison: str
    """One of `<`, `<=`, `>`, `>=`."""
    bound: float
    text: str
    """The target as the report states it, for example `under 1 s`."""

    def check(self, value: float) -> bool:
        compare: Callable[[float, float], bool] = {
            "<": operator.lt,
            "<=": operator.le,
            ">": operator.gt,
            ">=": operator.ge,
        }[self.comparison]
        return compare(value, self.bound)


@dataclass
class Figure:
    """One reported number: the median of its runs, with the unit, the target and how it was formed."""

    label: str
    runs: list[float]
    unit: str
    target: Target | None = None
    digits: int = 1
    shown: str | None = None
    """Text shown instead of the number, for a figure that only has a bound, such as `> 30 s (capped)`."""
    note: str = ""

    @property
    def value(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    @property
    def verdict(self) -> Verdict:
        if self.target is None:
            return Verdict.INFO
        if self.value is None:
            return Verdict.MISSED
        return Verdict.MET if self.target.check(self.value) else Verdict.MISSED

    def value_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.value is None:
            return "no value"
        number = format_number(self.value, self.digits)
        return f"{number}%" if self.unit == "%" else f"{number} {self.unit}".strip()

    def runs_text(self) -> str:
        if len(self.runs) <= 1:
            return ""
        if len(self.runs) > MAX_RUNS_LISTED:
            low, high = min(self.runs), max(self.runs)
            return f"{len(self.runs)} runs from {format_number(low, self.digits)} to {format_number(high, self.digits)}"
        return ", ".join(format_number(run, self.digits) for run in self.runs)


@dataclass
class BenchmarkResult:
    """One benchmark's figures, with the method text and notes the report prints beside them."""

    name: str
    title: str
    method: str
    """Markdown paragraphs: what was run, with which settings, and what each figure is."""
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Observations from this run, such as an error count, for the report."""
    error: str | None = None
    seconds: float = 0.0


def format_number(value: float, digits: int) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile, for example 0.95 for p95."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]
