from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from app.api.deps import IdPath, Limit, Offset, SessionDep
from app.schemas import (
    ERROR_RESPONSES,
    EndpointCreate,
    EndpointPublic,
    EndpointsPublic,
    EndpointUpdate,
    ProbePublic,
)
from app.services import endpoints as service

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=ERROR_RESPONSES)


@router.post("", response_model=EndpointPublic, status_code=status.HTTP_201_CREATED,
             summary="Store an endpoint (its api_key is write-only)")
def create_endpoint(session: SessionDep, body: EndpointCreate) -> Any:
    return service.create(session, body)


@router.get("", response_model=EndpointsPublic, summary="List endpoints")
def list_endpoints(session: SessionDep, offset: Offset = 0,
                   limit: Limit = 100) -> Any:
    return service.list_public(session, offset=offset, limit=limit)


@router.get("/{endpoint_id}", response_model=EndpointPublic, summary="One endpoint")
def get_endpoint(session: SessionDep, endpoint_id: IdPath) -> Any:
    return service.get(session, endpoint_id)


@router.patch("/{endpoint_id}", response_model=EndpointPublic, summary="Change fields of an endpoint")
def update_endpoint(request: Request, session: SessionDep, endpoint_id: IdPath,
                    body: EndpointUpdate) -> Any:  # type: ignore[valid-type]
    changes = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
    updated = service.update(session, endpoint_id, changes)
    dispatcher = request.app.state.dispatcher
    if "concurrency" in changes and dispatcher is not None:  # queued cases follow the new limit
        dispatcher.register_endpoint_queue(updated.name, updated.concurrency)  # type: ignore[attr-defined]
    return updated


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete an endpoint (409 while a queued or running run uses it)")
def delete_endpoint(session: SessionDep, endpoint_id: IdPath) -> None:
    service.delete(session, endpoint_id)


@router.post("/{endpoint_id}/probe", response_model=ProbePublic,
             summary="Ask the endpoint what it supports (streaming usage, cached tokens, window)")
async def probe_endpoint(session: SessionDep, endpoint_id: IdPath) -> Any:
    """Sends a few small requests to the endpoint; failures are reported in ``result.errors``. The
    findings are saved on the endpoint and applied to the fields the user has not set."""
    result = await service.probe(session, endpoint_id)
    saved = service.get_record(session, endpoint_id).probe or {}
    return {"endpoint_id": endpoint_id, "result": result, "unreachable": saved.get("unreachable"),
            "applied": saved.get("applied") or {}}
