"""Payloads of FLIP's seven task types, with the field names and types of FLIP's trust-api.

The models validate the decoded JSON before any local call is made. Like
FLIP's, they ignore fields they do not know and coerce as pydantic's lax mode
does (for example "true" to True), but never a number to a string.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ValidationError

from ..handlers import TaskFailure

MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _check_email(value: str) -> str:
    # NOTE: FLIP uses pydantic's EmailStr, which needs the email-validator package. This check
    # is looser: one @, no spaces, a dot in the domain, and at most 254 characters.
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(value):
        raise ValueError("value is not a valid email address")
    return value


def _check_path_segment(value: str) -> str:
    # These ids go into a URL path of imaging-api. They are percent-encoded there, but an
    # empty id or a dot segment would still change the path, so they are rejected.
    if value in ("", ".", ".."):
        raise ValueError("must be an imaging project id, not empty or a dot segment")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
PathSegment = Annotated[str, AfterValidator(_check_path_segment)]
Model = TypeVar("Model", bound=BaseModel)


class CohortQueryInput(BaseModel):
    """`cohort_query`: run a cohort query on data-access-api and send its counts to the hub."""

    encrypted_project_id: str
    query_id: str
    query_name: str
    query: str
    trust_id: str


class PersistCohortInput(BaseModel):
    """`persist_cohort`: freeze the approved cohort on data-access-api."""

    project_id: str
    trust_id: str
    encrypted_project_id: str
    query: str
    query_id: str | None = None


class CentralHubUser(BaseModel):
    """A hub user to add to an imaging project."""

    id: UUID
    email: Email
    is_disabled: bool = False


class CentralHubProject(BaseModel):
    """`create_imaging`: create an imaging project from a hub project."""

    project_id: UUID
    trust_id: UUID
    project_name: str
    query: str | None = None
    users: list[CentralHubUser] = []
    dicom_to_nifti: bool = True


class DeleteImagingInput(BaseModel):
    """`delete_imaging`: delete an imaging project."""

    imaging_project_id: UUID


class GetImagingStatusInput(BaseModel):
    """`get_imaging_status`: count an imaging project's study imports by status."""

    imaging_project_id: PathSegment
    encoded_query: str


class ReimportStudiesInput(BaseModel):
    """`reimport_studies`: retry an imaging project's failed study imports."""

    imaging_project_id: PathSegment
    encoded_query: str


class UpdateProfileRequest(BaseModel):
    """`update_user_profile`: enable or disable a user on imaging-api."""

    email: Email
    enabled: bool


def parse_payload(model: type[Model], task_type: str, payload: Any) -> Model:
    """Validate a decoded payload; raise TaskFailure naming each invalid field, never its value."""
    if not isinstance(payload, dict):
        raise TaskFailure(f"Invalid payload for {task_type}: a JSON {type(payload).__name__}, expected an object")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise TaskFailure(f"Invalid payload for {task_type}: {describe_errors(error)}") from None


def describe_errors(error: ValidationError) -> str:
    """List each problem as `field: message`, leaving out the input values, which may be sensitive."""
    problems = []
    for problem in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in problem["loc"]) or "payload"
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
