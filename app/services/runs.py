"""Runs: create from a matrix, follow progress, cancel, resume, re-run, delete."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app import crud
from app.errors import ConflictError, NotFoundError, UnavailableError
from app.execution.dispatch import Dispatcher
from app.models import ACTIVE_STATUSES, RunRecord, RunStatus, as_utc, utcnow
from app.schemas import RunCreate, RunProgress, RunPublic, RunsPublic
from app.services import endpoints as endpoint_service
from app.services import run_views
from app.services import suites as suite_service
from evals import (
    EmbeddingSettings,
    Endpoint,
    RunSpec,
    Suite,
    UserInputError,
    is_judge_scorer,
    make_spec,
    plan_cases,
)


def get_record(session: Session, run_id: int) -> RunRecord:
    record = crud.get_run(session, run_id=run_id)
    if record is None:
        raise NotFoundError(f"run {run_id} not found", field="run_id")
    return record


# ------------------------------------------------------------------------------------------- creating
def _endpoint(session: Session, endpoint_id: int, field: str) -> Endpoint:
    record = crud.get_endpoint(session, endpoint_id=endpoint_id)
    if record is None:
        raise NotFoundError(f"endpoint {endpoint_id} not found", field=field)
    return endpoint_service.to_domain(record, crud.get_endpoint_key(session, endpoint_id=endpoint_id))


def build_spec(session: Session, body: RunCreate) -> tuple[RunSpec, Suite, list[Endpoint]]:
    """The frozen spec of ``body`` (endpoint keys excluded), the suite and the tested endpoints."""
    suite_record = suite_service.get_record(session, body.suite_id)
    endpoints = [_endpoint(session, eid, f"endpoint_ids[{i}]") for i, eid in enumerate(body.endpoint_ids)]
    names = [e.name for e in endpoints]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise UserInputError(f"endpoint '{name}' is listed twice", field=f"endpoint_ids[{i}]")
    judge = _endpoint(session, body.judge_endpoint_id, "judge_endpoint_id") if body.judge_endpoint_id else None
    embeddings = None
    if body.embeddings is not None:
        e = body.embeddings
        separate = _endpoint(session, e.endpoint_id, "embeddings.endpoint_id") if e.endpoint_id else None
        embeddings = EmbeddingSettings(source=e.source, endpoint=separate, model=e.model, batch_size=e.batch_size)
    suite = crud.load_suite(session, record=suite_record)
    # validates strategy parameters and scorer names, and adds the default scorers
    spec = make_spec(suite, endpoints, body.strategies, body.scorers, system_prompt=body.system_prompt,
                     judge=judge, embeddings=embeddings)
    if any(is_judge_scorer(n) for n in spec.scorers) and judge is None:
        raise UserInputError("the llm_judge scorers need a judge endpoint", field="judge_endpoint_id")
    return spec, suite, endpoints


def count_cases(spec: RunSpec, suite: Suite) -> int:
    return len(plan_cases(spec, suite))


def queue_limits(session: Session, spec: RunSpec) -> dict[str, int]:
    """Concurrency of each endpoint's queue: the stored endpoint's current value, else the spec's."""
    limits: dict[str, int] = {}
    for public in spec.endpoints:  # judge and embedding calls happen inside the cases of these queues
        record = crud.get_endpoint_by_name(session, name=public["name"])
        limits[public["name"]] = int(record.config.get("concurrency", public["concurrency"])
                                     if record else public["concurrency"])
    return limits


def _dispatch(session: Session, dispatcher: Dispatcher, record: RunRecord) -> None:
    spec = RunSpec.model_validate(record.spec)
    try:
        dispatcher.start_run(record.id or 0, record.attempt, queue_limits(session, spec))
    except Exception as e:
        record.status, record.error, record.finished_at = RunStatus.failed.value, f"could not queue: {e}", utcnow()
        session.add(record)
        session.commit()
        raise UnavailableError(f"the run was stored but could not be queued: {e}") from e


def create(session: Session, dispatcher: Dispatcher, body: RunCreate) -> RunPublic:
    spec, suite, _ = build_spec(session, body)
    total = count_cases(spec, suite)
    record = crud.create_run(session, run=RunRecord(
        name=body.name, suite_id=body.suite_id, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash,
        total_cases=total))
    session.commit()
    _dispatch(session, dispatcher, record)
    return get(session, record.id or 0)


def rerun(session: Session, dispatcher: Dispatcher, run_id: int) -> RunPublic:
    """A new run with the same spec; cached responses make the repeated calls free."""
    old = get_record(session, run_id)
    record = crud.create_run(session, run=RunRecord(
        name=old.name, suite_id=old.suite_id, spec=old.spec, spec_hash=old.spec_hash,
        total_cases=old.total_cases, rerun_of=old.id))
    session.commit()
    _dispatch(session, dispatcher, record)
    return get(session, record.id or 0)


def reusable_cases(session: Session, record: RunRecord) -> tuple[int, int]:
    """Drop the stored cases a resume must not reuse: errored cases (they are run again) and cases whose
    id is not in the run's plan (a case id covers the case's full identity: endpoint base URL and model,
    strategy parameters, question and context content, scorers; see ``evals.runner.case_identity``).
    Returns (errored, stale) counts."""
    suite_record = suite_service.get_record(session, record.suite_id)
    plan_ids = {p.case_id for p in plan_cases(RunSpec.model_validate(record.spec),
                                                crud.load_suite(session, record=suite_record))}
    stored = crud.stored_case_ids(session, run_id=record.id or 0)
    stale = stored - plan_ids
    errored = crud.errored_case_ids(session, run_id=record.id or 0) & plan_ids
    crud.delete_cases(session, run_id=record.id or 0, case_ids=sorted(stale | errored))
    return len(errored), len(stale)


def resume(session: Session, dispatcher: Dispatcher, run_id: int, *, force: bool = False) -> RunPublic:
    """A new attempt of the run that executes the cases without a stored result, the errored cases
    again, and any stored case whose identity no longer matches the plan (never reused)."""
    record = get_record(session, run_id)
    if record.status == RunStatus.completed:
        raise ConflictError(f"run {run_id} is completed; use rerun for a new run")
    if record.status in ACTIVE_STATUSES:
        if not force:
            raise ConflictError(f"run {run_id} is {record.status}; pass force=true to restart its attempt")
        dispatcher.cancel_run(run_id, record.attempt)
    reusable_cases(session, record)
    record.attempt += 1
    record.status, record.error, record.finished_at = RunStatus.queued.value, None, None
    run_views.invalidate(session, run_id)
    session.add(record)
    session.commit()
    _dispatch(session, dispatcher, record)
    return get(session, run_id)


def cancel(session: Session, dispatcher: Dispatcher, run_id: int) -> RunPublic:
    record = get_record(session, run_id)
    if record.status not in ACTIVE_STATUSES:
        raise ConflictError(f"run {run_id} is {record.status}; only queued or running runs can be cancelled")
    record.status, record.finished_at = RunStatus.cancelled.value, utcnow()
    session.add(record)
    session.commit()
    dispatcher.cancel_run(run_id, record.attempt)
    return get(session, run_id)


def delete(session: Session, dispatcher: Dispatcher, run_id: int) -> None:
    record = get_record(session, run_id)
    if record.status in ACTIVE_STATUSES:
        dispatcher.cancel_run(run_id, record.attempt)
    crud.delete_run(session, record=record)
    session.commit()


# ------------------------------------------------------------------------------------------- reading
def _progress(record: RunRecord, rows: list[Any], done_this_attempt: int | None, now: datetime) -> RunProgress:
    outcomes: dict[str, int] = {}
    sums = [0, 0, 0, 0.0]
    for _run_id, outcome, n, prompt, completion, cached, cost in rows:
        outcomes[outcome] = outcomes.get(outcome, 0) + int(n)
        sums[0] += int(prompt)
        sums[1] += int(completion)
        sums[2] += int(cached)
        sums[3] += float(cost)
    done = sum(outcomes.values())
    started = as_utc(record.started_at)
    end = as_utc(record.finished_at) or now
    elapsed = (end - started).total_seconds() if started else None
    eta = None
    if record.status == RunStatus.running and elapsed and done_this_attempt:
        eta = (record.total_cases - done) * elapsed / done_this_attempt
    return RunProgress(done=done, total=record.total_cases,
                       fraction=done / record.total_cases if record.total_cases else 1.0, outcomes=outcomes,
                       prompt_tokens=int(sums[0]), completion_tokens=int(sums[1]), cached_tokens=int(sums[2]),
                       cost_usd=float(sums[3]), elapsed_s=elapsed, eta_s=eta)


def to_public(session: Session, records: list[RunRecord]) -> list[RunPublic]:
    # a finished run's counts and sums no longer change: aggregated over its cases once, then stored
    stored = run_views.stored_many(session, records, "progress", [])
    grouped: dict[int, list[Any]] = defaultdict(list, {i: json.loads(body) for i, body in stored.items()})
    ids = [r.id for r in records if r.id is not None and r.id not in stored]
    if ids:
        for run_id, outcome, n, prompt, completion, cached, cost in crud.progress_rows(session, run_ids=ids):
            grouped[run_id].append([run_id, outcome, int(n), int(prompt), int(completion), int(cached), float(cost)])
        for r in records:
            if r.id in ids and r.status not in ACTIVE_STATUSES:
                run_views.put(session, r, "progress", [], json.dumps(grouped.get(r.id, [])).encode())
    now = utcnow()
    out = []
    for r in records:
        recent = None
        if r.status == RunStatus.running and r.started_at is not None:
            recent = crud.count_cases_since(session, run_id=r.id or 0, since=r.started_at)
        out.append(RunPublic(
            id=r.id or 0, name=r.name, suite_id=r.suite_id, status=r.status, attempt=r.attempt,  # type: ignore[arg-type]
            total_cases=r.total_cases, rerun_of=r.rerun_of, error=r.error, spec_hash=r.spec_hash,
            spec=RunSpec.model_validate(r.spec), created_at=as_utc(r.created_at),  # type: ignore[arg-type]
            started_at=as_utc(r.started_at), finished_at=as_utc(r.finished_at),
            progress=_progress(r, grouped.get(r.id or 0, []), recent, now)))
    return out


def get(session: Session, run_id: int) -> RunPublic:
    return to_public(session, [get_record(session, run_id)])[0]


def list_public(session: Session, *, offset: int, limit: int, status: str | None,
                suite_id: int | None) -> RunsPublic:
    records, count = crud.list_runs(session, offset=offset, limit=limit, status=status, suite_id=suite_id)
    return RunsPublic(data=to_public(session, records), count=count)
