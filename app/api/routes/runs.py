from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from app.api.deps import DispatcherDep, IdPath, Limit, Offset, SessionDep
from app.schemas import (
    ERROR_RESPONSES,
    MAX_ID,
    RunCreate,
    RunEstimate,
    RunImport,
    RunPublic,
    RunsPublic,
    RunUpdate,
)
from app.services import estimate as estimate_service
from app.services import runs as service

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)


@router.post("", response_model=RunPublic, status_code=status.HTTP_201_CREATED,
             summary="Create a run from a matrix and queue it")
def create_run(session: SessionDep, dispatcher: DispatcherDep, body: RunCreate) -> RunPublic:
    """One suite × endpoints × strategies, scored by ``scorers``. Executes in the background."""
    return service.create(session, dispatcher, body)


@router.post("/import", response_model=RunPublic, status_code=status.HTTP_201_CREATED,
             summary="Store a finished CLI run (spec and results JSONL) with its cases")
def import_run(session: SessionDep, body: RunImport) -> RunPublic:
    """What ``ctxeval push`` calls. Errors name the results line and field to fix."""
    return service.import_run(session, body)


@router.post("/estimate", response_model=RunEstimate, summary="Cases, tokens and cost before starting")
def estimate_run(session: SessionDep, body: RunCreate) -> RunEstimate:
    return estimate_service.estimate(session, body)


@router.get("", response_model=RunsPublic, summary="List runs, newest first")
def list_runs(session: SessionDep, offset: Offset = 0, limit: Limit = 100,
              status: Literal["queued", "running", "completed", "completed_with_errors", "failed", "cancelled"] | None = None,
              suite_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              tag: Annotated[str | None, Query(max_length=50, description="only runs with this tag")] = None,
              ) -> RunsPublic:
    return service.list_public(session, offset=offset, limit=limit, status=status, suite_id=suite_id, tag=tag)


@router.get("/{run_id}", response_model=RunPublic, summary="A run with its live progress")
def get_run(session: SessionDep, run_id: IdPath) -> RunPublic:
    return service.get(session, run_id)


@router.post("/{run_id}/cancel", response_model=RunPublic, summary="Cancel a queued or running run")
def cancel_run(session: SessionDep, dispatcher: DispatcherDep, run_id: IdPath) -> RunPublic:
    return service.cancel(session, dispatcher, run_id)


@router.post("/{run_id}/resume", response_model=RunPublic,
             summary="Execute the cases of a cancelled or failed run that have no result")
def resume_run(session: SessionDep, dispatcher: DispatcherDep, run_id: IdPath,
               force: bool = Query(False, description="restart the attempt of a queued or running run")) -> RunPublic:
    return service.resume(session, dispatcher, run_id, force=force)


@router.post("/{run_id}/rerun", response_model=RunPublic, status_code=status.HTTP_201_CREATED,
             summary="A new run with the same spec (cached responses make it free)")
def rerun_run(session: SessionDep, dispatcher: DispatcherDep, run_id: IdPath) -> RunPublic:
    return service.rerun(session, dispatcher, run_id)


@router.patch("/{run_id}", response_model=RunPublic, summary="Rename, tag or annotate a run")
def update_run(session: SessionDep, run_id: IdPath, body: RunUpdate) -> RunPublic:
    """Only the labels change (``name``, ``tags``, ``notes``); the spec and results never do."""
    return service.update_labels(session, run_id, body.model_dump(exclude_unset=True))


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a run and its cases")
def delete_run(session: SessionDep, dispatcher: DispatcherDep, run_id: IdPath) -> None:
    service.delete(session, dispatcher, run_id)
