"""A synthetic imaging dataset for the demo's data-access-api, which returns aggregate counts only.

The rows are drawn from a seeded random generator at start-up, so no real
patient data is involved. Every count leaves the service rounded, so small
groups cannot be picked out: a count of 10 or less becomes 0, and any other
count is rounded to the nearest 10.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SUPPRESSED_AT_OR_BELOW = 10

COLUMNS: dict[str, tuple[Any, ...]] = {
    "sex": ("F", "M"),
    "age_band": ("18-29", "30-44", "45-59", "60-74", "75+"),
    "modality": ("CT", "MR", "CR", "US", "PT"),
    "body_part": ("HEAD", "CHEST", "ABDOMEN", "PELVIS", "SPINE", "KNEE"),
    # Years are numbers, as a database column would return them; the trust sends them on as strings.
    "study_year": (2019, 2020, 2021, 2022, 2023, 2024),
}
WEIGHTS: dict[str, tuple[float, ...]] = {
    "sex": (0.52, 0.48),
    "age_band": (0.12, 0.2, 0.25, 0.26, 0.17),
    "modality": (0.3, 0.2, 0.35, 0.1, 0.05),
    "body_part": (0.2, 0.3, 0.2, 0.1, 0.12, 0.08),
    "study_year": (0.12, 0.1, 0.16, 0.19, 0.21, 0.22),
}

_SELECT = re.compile(r"\s*select\b", re.IGNORECASE)
_EQUALS = re.compile(r"\b([a-z_]+)\s*=\s*(?:'([^']*)'|(\d+))", re.IGNORECASE)
_IN_LIST = re.compile(r"\b([a-z_]+)\s+in\s*\(([^)]*)\)", re.IGNORECASE)
_LIST_ITEM = re.compile(r"'([^']*)'|(\d+)")


class InvalidQuery(ValueError):
    """The demo cannot run the query; the message becomes the detail of data-access-api's 400 reply."""


@dataclass(frozen=True)
class Filter:
    column: str
    values: frozenset[Any]


def rounded_count(count: int) -> int:
    """Apply the small-number rules: 10 or less becomes 0, the rest is rounded half up to the nearest 10."""
    if count <= SUPPRESSED_AT_OR_BELOW:
        return 0
    return (count + 5) // 10 * 10


class SyntheticCohort:
    """Rows of made-up imaging studies, filtered by the `column = value` conditions of a query."""

    def __init__(self, rows: int = 12_000, seed: int | None = None) -> None:
        generator = random.Random(seed)
        columns = {
            name: generator.choices(values, weights=WEIGHTS[name], k=rows) for name, values in COLUMNS.items()
        }
        self._rows = [dict(zip(columns, values)) for values in zip(*columns.values())]

    def __len__(self) -> int:
        return len(self._rows)

    def statistics(self, query: str, query_id: str, trust_id: str) -> dict[str, Any]:
        """Return data-access-api's statistics reply for a query: counts per value of every column."""
        rows = self.matching(query)
        created = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        if len(rows) <= SUPPRESSED_AT_OR_BELOW:
            return {
                "query_id": query_id,
                "trust_id": trust_id,
                "record_count": 0,
                "created": created,
                "data": [],
                "suppressed": True,
            }

        data = []
        for name, values in COLUMNS.items():
            counts = {value: 0 for value in values}
            for row in rows:
                counts[row[name]] += 1
            results = [{"value": value, "count": rounded_count(count)} for value, count in counts.items()]
            data.append({"name": name, "results": results})
        return {
            "query_id": query_id,
            "trust_id": trust_id,
            "record_count": rounded_count(len(rows)),
            "created": created,
            "data": data,
            "suppressed": False,
        }

    def matching(self, query: str) -> list[dict[str, Any]]:
        """Return the rows that meet every condition of the query; raise InvalidQuery when it cannot run."""
        filters = parse_filters(query)
        return [row for row in self._rows if all(row[item.column] in item.values for item in filters)]


def parse_filters(query: str) -> list[Filter]:
    """Read `column = 'value'`, `column = 2021` and `column IN (...)` conditions; the rest is ignored.

    This is not SQL: every condition found must hold, whatever joins them.
    """
    if not _SELECT.match(query):
        raise InvalidQuery("Only SELECT statements are allowed")

    filters = []
    for match in _EQUALS.finditer(query):
        value = match.group(2) if match.group(2) is not None else int(match.group(3))
        filters.append(_filter(match.group(1), [value]))
    for match in _IN_LIST.finditer(query):
        items: list[Any] = []
        for text, number in _LIST_ITEM.findall(match.group(2)):
            items.append(int(number) if number else text)
        filters.append(_filter(match.group(1), items))
    return filters


def _filter(column: str, values: list[Any]) -> Filter:
    name = column.lower()
    if name not in COLUMNS:
        raise InvalidQuery(f"Invalid SQL: column {name!r} does not exist")
    return Filter(name, frozenset(values))
