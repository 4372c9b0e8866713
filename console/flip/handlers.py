"""Handlers for FLIP's seven task types, each forwarding one task to a service inside the trust.

Every handler validates its payload before it calls anything, so an invalid
payload fails the task without a request. A handler returns the service's
reply JSON when the hub expects data, else None for success with no data.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from ..handlers import Handler, HandlerContext, HandlerRegistry, TaskFailure
from ..settings import Settings
from .cohort_results import CohortResultsFailed, CohortResultsPoster, error_report, stringify_values
from .local_services import LocalServices, Service
from .payloads import (
    CentralHubProject,
    CohortQueryInput,
    DeleteImagingInput,
    GetImagingStatusInput,
    PersistCohortInput,
    ReimportStudiesInput,
    UpdateProfileRequest,
    parse_payload,
)

log = logging.getLogger(__name__)

COHORT_QUERY = "cohort_query"
PERSIST_COHORT = "persist_cohort"
CREATE_IMAGING = "create_imaging"
DELETE_IMAGING = "delete_imaging"
GET_IMAGING_STATUS = "get_imaging_status"
REIMPORT_STUDIES = "reimport_studies"
UPDATE_USER_PROFILE = "update_user_profile"

FLIP_TASK_TYPES = (
    COHORT_QUERY,
    PERSIST_COHORT,
    CREATE_IMAGING,
    DELETE_IMAGING,
    GET_IMAGING_STATUS,
    REIMPORT_STUDIES,
    UPDATE_USER_PROFILE,
)


class FlipHandlers:
    """FLIP's task types, bound to the local services and the hub's cohort results endpoint."""

    def __init__(self, settings: Settings, services: LocalServices, cohort_results: CohortResultsPoster) -> None:
        self._services = services
        self._cohort_results = cohort_results
        self._cohort_timeout = settings.cohort_query_timeout_seconds

    def by_task_type(self) -> dict[str, Handler]:
        return {
            COHORT_QUERY: self.cohort_query,
            PERSIST_COHORT: self.persist_cohort,
            CREATE_IMAGING: self.create_imaging,
            DELETE_IMAGING: self.delete_imaging,
            GET_IMAGING_STATUS: self.get_imaging_status,
            REIMPORT_STUDIES: self.reimport_studies,
            UPDATE_USER_PROFILE: self.update_user_profile,
        }

    def register(self, registry: HandlerRegistry) -> None:
        for task_type, handler in self.by_task_type().items():
            registry.register(task_type, handler)

    async def cohort_query(self, payload: Any, context: HandlerContext) -> None:
        """Run the query on data-access-api and send its counts to the hub; the task carries no data.

        Whenever the query fails, an error report reaches the hub's cohort
        results before the task's failure does, because without it the hub
        shows the query running for this trust forever.
        """
        try:
            request = parse_payload(CohortQueryInput, COHORT_QUERY, payload)
        except TaskFailure as failure:
            # The ids may still be readable, and they are all the hub needs to show the error.
            if isinstance(payload, dict):
                await self._report_cohort_error(payload.get("query_id"), payload.get("trust_id"), failure, context)
            raise

        route = "POST /cohort"
        try:
            reply = await self._services.request(
                Service.DATA_ACCESS_API,
                "POST",
                "/cohort",
                route=route,
                json_body=request.model_dump(),
                timeout_seconds=self._cohort_timeout,
            )
            counts = reply.json(Service.DATA_ACCESS_API, route)
            if not isinstance(counts, dict):
                kind = type(counts).__name__
                raise TaskFailure(f"{Service.DATA_ACCESS_API} replied to {route} with a JSON {kind}, expected an object")
            await self._send_cohort_results(stringify_values(counts), context)
        except TaskFailure as failure:
            await self._report_cohort_error(request.query_id, request.trust_id, failure, context)
            raise
        return None

    async def persist_cohort(self, payload: Any, context: HandlerContext) -> Any:
        """Freeze the approved cohort on data-access-api; return its reply (aggregates only)."""
        request = parse_payload(PersistCohortInput, PERSIST_COHORT, payload)
        route = "POST /cohort/snapshot"
        reply = await self._services.request(
            Service.DATA_ACCESS_API,
            "POST",
            "/cohort/snapshot",
            route=route,
            json_body={"encrypted_project_id": request.encrypted_project_id, "query": request.query},
            timeout_seconds=self._cohort_timeout,
        )
        return reply.json(Service.DATA_ACCESS_API, route)

    async def create_imaging(self, payload: Any, context: HandlerContext) -> Any:
        """Create an imaging project from the hub's project; return imaging-api's reply."""
        request = parse_payload(CentralHubProject, CREATE_IMAGING, payload)
        route = "POST /projects/create-project-from-central-hub-project"
        reply = await self._services.request(
            Service.IMAGING_API,
            "POST",
            "/projects/create-project-from-central-hub-project",
            route=route,
            json_body=request.model_dump(mode="json"),
        )
        return reply.json(Service.IMAGING_API, route)

    async def delete_imaging(self, payload: Any, context: HandlerContext) -> None:
        request = parse_payload(DeleteImagingInput, DELETE_IMAGING, payload)
        await self._services.request(
            Service.IMAGING_API,
            "DELETE",
            f"/projects/{request.imaging_project_id}",
            route="DELETE /projects/{imaging_project_id}",
            path_values=(str(request.imaging_project_id),),
        )
        return None

    async def get_imaging_status(self, payload: Any, context: HandlerContext) -> Any:
        """Return imaging-api's counts of the project's study imports by status."""
        request = parse_payload(GetImagingStatusInput, GET_IMAGING_STATUS, payload)
        route = "GET /retrieval/import_status_count/{imaging_project_id}"
        reply = await self._services.request(
            Service.IMAGING_API,
            "GET",
            f"/retrieval/import_status_count/{_segment(request.imaging_project_id)}",
            route=route,
            params={"encoded_query": request.encoded_query},
            path_values=(request.imaging_project_id,),
        )
        return reply.json(Service.IMAGING_API, route)

    async def reimport_studies(self, payload: Any, context: HandlerContext) -> None:
        request = parse_payload(ReimportStudiesInput, REIMPORT_STUDIES, payload)
        await self._services.request(
            Service.IMAGING_API,
            "PUT",
            f"/retrieval/reimport_imaging_project_studies/{_segment(request.imaging_project_id)}",
            route="PUT /retrieval/reimport_imaging_project_studies/{imaging_project_id}",
            params={"encoded_query": request.encoded_query},
            path_values=(request.imaging_project_id,),
        )
        return None

    async def update_user_profile(self, payload: Any, context: HandlerContext) -> None:
        request = parse_payload(UpdateProfileRequest, UPDATE_USER_PROFILE, payload)
        await self._services.request(
            Service.IMAGING_API, "PUT", "/users", route="PUT /users", json_body=request.model_dump()
        )
        return None

    async def _send_cohort_results(self, counts: dict[str, Any], context: HandlerContext) -> None:
        try:
            await self._cohort_results.post(counts, context.task_id)
        except CohortResultsFailed as error:
            raise TaskFailure(f"Cohort results could not be sent to the hub: {error}") from None
        log.info("task %s (%s): cohort results sent to the hub", context.task_id, context.task_type)

    async def _report_cohort_error(
        self, query_id: Any, trust_id: Any, failure: TaskFailure, context: HandlerContext
    ) -> None:
        """Send the error report when the payload names its query and trust; a failure to send it is logged, not raised."""
        if not (isinstance(query_id, str) and query_id and isinstance(trust_id, str) and trust_id):
            log.warning(
                "task %s (%s): no error report sent to the hub, the payload has no query_id and trust_id strings",
                context.task_id,
                context.task_type,
            )
            return
        try:
            await self._cohort_results.post(error_report(query_id, trust_id, failure.message), context.task_id)
        except CohortResultsFailed as error:
            # The task's own failure carries the cause, and this report only updates the hub's screen.
            log.warning("task %s (%s): the hub did not accept the error report: %s", context.task_id, context.task_type, error)
            return
        log.info("task %s (%s): error report sent to the hub", context.task_id, context.task_type)


def _segment(value: str) -> str:
    """Percent-encode a value for one URL path segment, slashes included."""
    return quote(value, safe="")
