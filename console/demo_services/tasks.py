"""The demo's task mix: FLIP's task types aimed at the demo services, with diagnostic tasks mixed in.

Most FLIP tasks succeed. Some fail on purpose, the way they fail in a trust:
a query data-access-api rejects, an imaging project or user that does not
exist. The diagnostic share adds long sleeps and failures so the console
shows every state.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from typing import Any

from ..hub.generator import draw_diagnostic_task
from .dataset import COLUMNS
from .imaging import ImagingState
from .server import EXISTING_USERS

DIAGNOSTIC_SHARE = 0.3
INVALID_QUERY_SHARE = 0.15
MISSING_TARGET_SHARE = 0.25
MIN_PROJECTS_KEPT = 2
"""Projects delete_imaging leaves in place, so status and reimport tasks always have a target."""

FLIP_WEIGHTS = {
    "cohort_query": 0.26,
    "persist_cohort": 0.08,
    "create_imaging": 0.14,
    "get_imaging_status": 0.2,
    "reimport_studies": 0.1,
    "delete_imaging": 0.08,
    "update_user_profile": 0.14,
}
QUERY_NAMES = ("Chest CT", "Brain MR", "Older adults", "Recent studies", "Knee imaging", "Abdominal US")
PROJECT_NAMES = ("lung-nodules", "stroke-triage", "knee-oa", "liver-fat", "spine-fracture")
REJECTED_QUERIES = ("DELETE FROM omop.person", "SELECT * FROM omop.person WHERE ward = 'A1'")


def encode_query(query: str) -> str:
    """Encode a query as FLIP sends it to imaging-api: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(query.encode()).decode().rstrip("=")


class DemoTaskMix:
    """Task draw for TaskGenerator: FLIP task types on the demo services, plus diagnostic ones."""

    def __init__(self, trust_id: str, imaging: ImagingState, diagnostic_share: float = DIAGNOSTIC_SHARE) -> None:
        self.trust_id = trust_id
        self.imaging = imaging
        self.diagnostic_share = diagnostic_share

    def __call__(self, generator: random.Random, sequence: int) -> tuple[str, str]:
        if generator.random() < self.diagnostic_share:
            return draw_diagnostic_task(generator, sequence)
        task_type = generator.choices(list(FLIP_WEIGHTS), weights=list(FLIP_WEIGHTS.values()))[0]
        return task_type, json.dumps(self.payload(task_type, generator))

    def payload(self, task_type: str, generator: random.Random) -> dict[str, Any]:
        """Build a payload of one FLIP task type, aimed at the projects and users the demo services contain now."""
        projects = self.imaging.project_ids()
        if task_type == "cohort_query":
            query = self._rejected_or_valid_query(generator)
            return {
                "encrypted_project_id": _opaque_id(generator),
                "query_id": str(_uuid(generator)),
                "query_name": generator.choice(QUERY_NAMES),
                "query": query,
                "trust_id": self.trust_id,
            }
        if task_type == "persist_cohort":
            return {
                "project_id": str(_uuid(generator)),
                "trust_id": self.trust_id,
                "encrypted_project_id": _opaque_id(generator),
                "query": random_query(generator),
                "query_id": str(_uuid(generator)),
            }
        if task_type == "create_imaging" or not projects:
            return self._hub_project(generator)
        if task_type in ("get_imaging_status", "reimport_studies"):
            return {"imaging_project_id": generator.choice(projects), "encoded_query": encode_query(random_query(generator))}
        if task_type == "delete_imaging":
            missing = generator.random() < MISSING_TARGET_SHARE or len(projects) <= MIN_PROJECTS_KEPT
            target = str(_uuid(generator)) if missing else generator.choice(projects)
            return {"imaging_project_id": target}
        if task_type == "update_user_profile":
            known = self.imaging.user_emails() or list(EXISTING_USERS)
            missing = generator.random() < MISSING_TARGET_SHARE
            email = f"left.the.trust.{generator.randint(1, 99)}@example.org" if missing else generator.choice(known)
            return {"email": email, "enabled": generator.random() < 0.8}
        raise ValueError(f"unknown FLIP task type {task_type!r}")

    def failing_payload(self, task_type: str, generator: random.Random) -> dict[str, Any]:
        """Build a payload the demo services reject: a query data-access-api refuses, or a missing project."""
        if task_type == "cohort_query":
            return {**self.payload(task_type, generator), "query": REJECTED_QUERIES[0]}
        if task_type == "delete_imaging":
            return {"imaging_project_id": str(_uuid(generator))}
        raise ValueError(f"no failing payload for task type {task_type!r}")

    def _rejected_or_valid_query(self, generator: random.Random) -> str:
        if generator.random() < INVALID_QUERY_SHARE:
            return generator.choice(REJECTED_QUERIES)
        return random_query(generator)

    def _hub_project(self, generator: random.Random) -> dict[str, Any]:
        users = [
            {"id": str(_uuid(generator)), "email": email}
            for email in generator.sample(EXISTING_USERS, k=generator.randint(1, len(EXISTING_USERS)))
        ]
        return {
            "project_id": str(_uuid(generator)),
            "trust_id": self.trust_id,
            "project_name": f"{generator.choice(PROJECT_NAMES)}-{generator.randint(100, 999)}",
            "query": random_query(generator),
            "users": users,
            "dicom_to_nifti": generator.random() < 0.7,
        }


def random_query(generator: random.Random) -> str:
    """Build a SELECT with one to three conditions on the synthetic dataset's columns."""
    columns = generator.sample(sorted(COLUMNS), k=generator.randint(1, 3))
    conditions = []
    for column in columns:
        value = generator.choice(COLUMNS[column])
        conditions.append(f"{column} = {value}" if isinstance(value, int) else f"{column} = '{value}'")
    return "SELECT * FROM omop.radiology_occurrence WHERE " + " AND ".join(conditions)


def _uuid(generator: random.Random) -> uuid.UUID:
    return uuid.UUID(int=generator.getrandbits(128), version=4)


def _opaque_id(generator: random.Random) -> str:
    """Stand in for the hub's encrypted project id, which the trust passes on without reading."""
    return base64.urlsafe_b64encode(generator.randbytes(24)).decode()
