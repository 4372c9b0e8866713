"""In-memory imaging projects and users for the demo's imaging-api.

A project's study imports advance with time since it was created, so repeated
status requests show progress. Every method takes one lock, because tests read
the state from their own thread while the server runs in another.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

IMPORTS_PER_SECOND = 4.0
FAILED_SHARE = 0.03
MAX_PROCESSING = 5


@dataclass
class ImagingProject:
    id: str
    name: str
    hub_project_id: str
    studies: int
    created_at: float
    members: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "secondary_ID": self.id,
            "name": self.name,
            "description": f"Project corresponding to central hub project {self.hub_project_id}",
        }


class ImagingState:
    """Projects by id and users by email, with the import progress of each project."""

    def __init__(self, seed: int | None = None, clock: Any = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._clock = clock
        self._projects: dict[str, ImagingProject] = {}
        self._users: dict[str, bool] = {}

    def add_user(self, email: str, enabled: bool = True) -> None:
        with self._lock:
            self._users[email] = enabled

    def create_project(self, hub_project: dict[str, Any], started_seconds_ago: float = 0.0) -> dict[str, Any]:
        """Create a project and its members; return imaging-api's CreatedProject reply."""
        emails = [user["email"] for user in hub_project.get("users", []) if isinstance(user, dict) and "email" in user]
        with self._lock:
            project = ImagingProject(
                id=str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
                name=f"{hub_project.get('project_name', 'project')}-FL-Project",
                hub_project_id=str(hub_project.get("project_id")),
                studies=self._random.randint(40, 400),
                created_at=self._clock() - started_seconds_ago,
                members=set(emails),
            )
            self._projects[project.id] = project
            created = [email for email in emails if email not in self._users]
            for email in created:
                self._users[email] = True
        return {"ID": project.id, "name": project.name, "created_users": created, "added_users": emails}

    def delete_project(self, project_id: str) -> dict[str, Any] | None:
        """Remove a project and return it, or None when there is no such project."""
        with self._lock:
            project = self._projects.pop(project_id, None)
        return project.as_json() if project is not None else None

    def import_status(self, project_id: str) -> dict[str, Any] | None:
        """Return the project's import counts by status, or None when there is no such project."""
        with self._lock:
            project = self._projects.get(project_id)
            if project is None:
                return None
            elapsed = self._clock() - project.created_at
        attempted = min(project.studies, int(elapsed * IMPORTS_PER_SECOND))
        failed = int(attempted * FAILED_SHARE)
        remaining = project.studies - attempted
        processing = min(remaining, MAX_PROCESSING)
        return {
            "project_creation_completed": True,
            "import_status": {
                "successful_count": attempted - failed,
                "failed_count": failed,
                "processing_count": processing,
                "queued_count": remaining - processing,
                "queue_failed_count": 0,
            },
        }

    def has_project(self, project_id: str) -> bool:
        with self._lock:
            return project_id in self._projects

    def project_ids(self) -> list[str]:
        with self._lock:
            return list(self._projects)

    def set_user_enabled(self, email: str, enabled: bool) -> bool:
        """Enable or disable a known user; return False when there is no such user."""
        with self._lock:
            if email not in self._users:
                return False
            self._users[email] = enabled
            return True

    def user_enabled(self, email: str) -> bool | None:
        with self._lock:
            return self._users.get(email)

    def user_emails(self) -> list[str]:
        with self._lock:
            return list(self._users)
