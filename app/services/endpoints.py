"""Endpoints: create, change, delete, probe. Keys are stored apart and never leave the service."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app import crud
from app.errors import ConflictError, NotFoundError
from app.models import EndpointRecord, as_utc, utcnow
from app.schemas import EndpointProbe, EndpointPublic
from evals import Endpoint, ProbeResult, normalise_base_url, unreachable_reason
from evals import probe_endpoint as run_probe

PROBE_TIMEOUT_S = 30.0


def to_domain(record: EndpointRecord, api_key: str | None) -> Endpoint:
    """The engine's endpoint, key included (for execution only)."""
    return Endpoint.model_validate({**record.config, "name": record.name, "base_url": record.base_url,
                                    "model": record.model, "api_key": api_key or None})


def to_public(record: EndpointRecord, *, has_api_key: bool) -> BaseModel:
    return EndpointPublic.model_validate({
        **record.config, "name": record.name, "base_url": _root(record.base_url), "model": record.model,
        "id": record.id, "has_api_key": has_api_key, "created_at": as_utc(record.created_at),
        "updated_at": as_utc(record.updated_at), "probe": _stored_probe(record.probe),
    })


def _stored_probe(saved: dict[str, Any] | None) -> EndpointProbe | None:
    """The saved probe, or None when it was saved in a shape this version no longer reads (probe again)."""
    if not saved:
        return None
    try:
        return EndpointProbe.model_validate(saved)
    except ValidationError:
        return None


def _root(url: str) -> str:
    """A base URL stored before the one rule existed is shown the way it is used."""
    try:
        return normalise_base_url(url)
    except ValueError:
        return url


def public_list(session: Session, records: list[EndpointRecord]) -> list[BaseModel]:
    keyed = crud.endpoint_ids_with_keys(session, endpoint_ids=[r.id for r in records if r.id is not None])
    return [to_public(r, has_api_key=r.id in keyed) for r in records]


def list_public(session: Session, *, offset: int, limit: int) -> dict[str, Any]:
    records, count = crud.list_endpoints(session, offset=offset, limit=limit)
    return {"data": public_list(session, records), "count": count}


def get_record(session: Session, endpoint_id: int) -> EndpointRecord:
    record = crud.get_endpoint(session, endpoint_id=endpoint_id)
    if record is None:
        raise NotFoundError(f"endpoint {endpoint_id} not found", field="endpoint_id")
    return record


def get(session: Session, endpoint_id: int) -> BaseModel:
    record = get_record(session, endpoint_id)
    return public_list(session, [record])[0]


def create(session: Session, endpoint: Endpoint) -> BaseModel:
    if crud.get_endpoint_by_name(session, name=endpoint.name) is not None:
        raise ConflictError(f"an endpoint named '{endpoint.name}' exists", field="name")
    try:
        record = crud.create_endpoint(session, endpoint=endpoint)
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise ConflictError(f"an endpoint named '{endpoint.name}' exists", field="name") from e
    return to_public(record, has_api_key=endpoint.api_key is not None and bool(endpoint.api_key.get_secret_value()))


def update(session: Session, endpoint_id: int, changes: dict[str, Any]) -> BaseModel:
    """Apply ``changes`` (only the fields the client sent) and validate the result as a whole.

    A key belongs to the base URL it was entered with: a change of ``base_url`` that does not bring
    a key of its own removes the stored one (``api_key_cleared`` in the answer says so), so a key can
    never be redirected to another server. Every surface that edits endpoints goes through here."""
    record = get_record(session, endpoint_id)
    key = crud.get_endpoint_key(session, endpoint_id=endpoint_id)
    current = to_domain(record, key).model_dump()
    set_key = "api_key" in changes
    merged = Endpoint.model_validate({**current, **changes})
    if merged.name != record.name and crud.get_endpoint_by_name(session, name=merged.name) is not None:
        raise ConflictError(f"an endpoint named '{merged.name}' exists", field="name")
    if merged.name != record.name and crud.active_runs_using_endpoint(session, name=record.name):
        raise ConflictError("the endpoint is used by a queued or running run; rename it later", field="name")
    moved = merged.base_url != record.base_url
    cleared = False
    if moved and not set_key:
        cleared = crud.delete_endpoint_key(session, endpoint_id=endpoint_id)
    crud.update_endpoint(session, record=record, endpoint=merged, set_key=set_key)
    session.commit()
    public = get(session, endpoint_id)
    return public.model_copy(update={"api_key_cleared": cleared}) if cleared else public


def delete(session: Session, endpoint_id: int) -> None:
    record = get_record(session, endpoint_id)
    active = crud.active_runs_using_endpoint(session, name=record.name)
    if active:
        raise ConflictError(f"endpoint '{record.name}' is used by active run(s) {active}; cancel them first")
    crud.delete_endpoint(session, record=record)
    session.commit()


# Endpoint fields a probe fills in, with the value that means "not set": a probe's finding replaces
# that value, or the value an earlier probe put there, never one the user chose.
PROBE_FIELDS: dict[str, Any] = {"context_window": None, "tokenizer": "auto", "supports_tools": None}


def probe_findings(result: ProbeResult) -> dict[str, Any]:
    """The endpoint settings a probe result supports: the served window, the server's own tokenizer
    when ``/tokenize`` works, and whether tool calls work (only what the probe could tell)."""
    found: dict[str, Any] = {}
    if result.context_window is not None:
        found["context_window"] = result.context_window
    if result.tokenize_works:
        found["tokenizer"] = "server"
    if result.tool_calls_work is not None and result.chat_works:
        found["supports_tools"] = result.tool_calls_work
    return found


def _changes_from_probe(record: EndpointRecord, found: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields to change, fields kept because the user set them) for a probe's findings."""
    before = (record.probe or {}).get("applied") or {}
    changes, kept = {}, {}
    for name, value in found.items():
        current = record.config.get(name, PROBE_FIELDS[name])
        if current == PROBE_FIELDS[name] or (name in before and before[name] == current):
            if current != value:
                changes[name] = value
        elif current != value:
            kept[name] = current
    return changes, kept


async def probe(session: Session, endpoint_id: int, *, apply: bool = True) -> ProbeResult:
    """What the endpoint supports (window, tokenizer, streaming usage, cached tokens, embeddings, tools).

    Unreachable servers and failed checks are part of the result (``reachable``, ``errors``). The result
    is saved on the endpoint (``probe``); with ``apply`` its findings (:func:`probe_findings`) become the
    endpoint's settings wherever the user has not set a value, through :func:`update` like any change."""
    record = get_record(session, endpoint_id)
    endpoint = to_domain(record, crud.get_endpoint_key(session, endpoint_id=endpoint_id))
    result = await run_probe(endpoint, timeout_s=PROBE_TIMEOUT_S)
    record = get_record(session, endpoint_id)  # may have changed while the probe ran
    found = probe_findings(result)
    changes, kept = _changes_from_probe(record, found) if apply else ({}, {})
    previous = (record.probe or {}).get("applied") or {}
    still = {k: v for k, v in previous.items() if record.config.get(k, PROBE_FIELDS.get(k)) == v}
    applied = {**still, **changes}  # fields whose value a probe set and the user has not changed since
    if changes:
        update(session, endpoint_id, changes)
        record = get_record(session, endpoint_id)
    record.probe = {"result": result.model_dump(mode="json"), "probed_at": utcnow().isoformat(),
                    "applied": applied, "kept": kept, "unreachable": unreachable_reason(result)}
    session.add(record)
    session.commit()
    return result
