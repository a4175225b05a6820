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
from app.schemas import RunCreate, RunHeadline, RunImport, RunProgress, RunPublic, RunsPublic
from app.services import endpoints as endpoint_service
from app.services import run_views
from app.services import suites as suite_service
from app.services.plans import planned
from evals import (
    CaseResult,
    CheckResult,
    EmbeddingSettings,
    Endpoint,
    RunSpec,
    Suite,
    UserInputError,
    evaluate_checks,
    is_judge_scorer,
    make_spec,
    parse_checks,
    validate_checks,
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
    suite = suite_service.load_record(session, suite_record)
    # validates strategy parameters and scorer names, and adds the default scorers
    spec = make_spec(suite, endpoints, body.strategies, body.scorers, system_prompt=body.system_prompt,
                     judge=judge, embeddings=embeddings, preset=body.preset)
    if any(is_judge_scorer(n) for n in spec.scorers) and judge is None:
        raise UserInputError("the llm_judge scorers need a judge endpoint", field="judge_endpoint_id")
    return spec, suite, endpoints


def count_cases(spec: RunSpec, suite: Suite) -> int:
    return len(planned(spec, suite))


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


def validated_checks(session: Session, spec: RunSpec, checks: list[str], baseline_run_id: int | None) -> list[str]:
    """The checks in canonical spelling, refused (422, naming the check) when they name a strategy,
    scorer or endpoint the spec lacks, or a baseline the request does not give."""
    if baseline_run_id is not None and crud.get_run(session, run_id=baseline_run_id) is None:
        raise NotFoundError(f"baseline run {baseline_run_id} not found", field="baseline_run_id")
    parsed = parse_checks(checks)
    validate_checks(parsed, strategies=[s.key for s in spec.strategies], scorers=list(spec.scorers),
                    endpoints=[e["name"] for e in spec.endpoints], has_baseline=baseline_run_id is not None)
    return [c.text for c in parsed]


def create(session: Session, dispatcher: Dispatcher, body: RunCreate) -> RunPublic:
    spec, suite, _ = build_spec(session, body)
    checks = validated_checks(session, spec, body.checks, body.baseline_run_id)
    total = count_cases(spec, suite)
    record = crud.create_run(session, run=RunRecord(
        name=body.name, suite_id=body.suite_id, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash,
        total_cases=total, checks=checks or None, baseline_run_id=body.baseline_run_id))
    session.commit()
    _dispatch(session, dispatcher, record)
    return get(session, record.id or 0)


def import_run(session: Session, body: RunImport) -> RunPublic:
    """Store a finished CLI run (spec and results JSONL) as a run with its cases.

    Every line must be a case of the spec's plan on the given suite; a case written twice keeps its last
    line (as ``ctxeval run --resume`` does). A run with every planned case gets the status an executed run
    would (``failed`` when no case got an answer, ``completed_with_errors``, ``completed``); one with fewer
    is ``cancelled`` (resumable here), its error saying how many are missing."""
    from app.services import cases as case_service

    suite_record = suite_service.get_record(session, body.suite_id)
    if body.spec.suite_hash != suite_record.content_hash:
        raise UserInputError(f"the spec is for suite content {body.spec.suite_hash[:12]}, but suite "
                             f"{body.suite_id} is {suite_record.content_hash[:12]}: push the suite the run used",
                             field="spec.suite_hash")
    suite = suite_service.load_record(session, suite_record)
    plans = planned(body.spec, suite)
    position = {p.case_id: i for i, p in enumerate(plans)}
    results: dict[str, CaseResult] = {}
    for n, line in enumerate(body.results.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            result = CaseResult.model_validate_json(line)
        except ValueError as e:
            errors: list[Any] = list(getattr(e, "errors", lambda: [])())
            where = ".".join(str(x) for x in errors[0]["loc"]) if errors else None
            why = errors[0]["msg"] if errors else str(e)
            raise UserInputError(f"not a case result: {why}", source="results", line=n, field=where) from e
        if result.case_id not in position:
            raise UserInputError(f"case {result.case_id} ({result.endpoint} · {result.strategy} · question "
                                 f"{result.question_id}) is not a case of this spec on suite {body.suite_id}",
                                 source="results", line=n)
        results[result.case_id] = result
    if not results:
        raise UserInputError("the results hold no case", field="results")
    checks = validated_checks(session, body.spec, body.checks, body.baseline_run_id)
    now = utcnow()
    missing = len(plans) - len(results)
    record = crud.create_run(session, run=RunRecord(
        name=body.name, suite_id=body.suite_id, spec=body.spec.model_dump(mode="json"),
        spec_hash=body.spec.spec_hash, total_cases=len(plans), started_at=now, finished_at=now,
        status=RunStatus.completed.value if not missing else RunStatus.cancelled.value,
        error=None if not missing else f"imported {len(results)} of {len(plans)} planned cases; resume to "
                                       "execute the rest",
        checks=checks or None, baseline_run_id=body.baseline_run_id))
    for case_id, result in results.items():
        crud.upsert_case(session, light=case_service.light_fields(result, run_id=record.id or 0,
                                                                  position=position[case_id]),
                         detail=case_service.detail_fields(result))
    if not missing:  # a complete import is settled like an executed run: failed, with errors, or clean
        session.flush()
        record.status, record.error = case_service.run_verdict(session, record)
    session.commit()
    return get(session, record.id or 0)


def rerun(session: Session, dispatcher: Dispatcher, run_id: int) -> RunPublic:
    """A new run with the same spec; cached responses make the repeated calls free."""
    old = get_record(session, run_id)
    record = crud.create_run(session, run=RunRecord(
        name=old.name, suite_id=old.suite_id, spec=old.spec, spec_hash=old.spec_hash,
        total_cases=old.total_cases, rerun_of=old.id, checks=old.checks, baseline_run_id=old.baseline_run_id))
    session.commit()
    _dispatch(session, dispatcher, record)
    return get(session, record.id or 0)


def reusable_cases(session: Session, record: RunRecord) -> tuple[int, int]:
    """Drop the stored cases a resume must not reuse: errored cases (they are run again) and cases whose
    id is not in the run's plan (a case id covers the case's full identity: endpoint base URL and model,
    strategy parameters, question and context content, scorers; see ``evals.runner.case_identity``).
    Returns (errored, stale) counts."""
    suite_record = suite_service.get_record(session, record.suite_id)
    plan_ids = {p.case_id for p in planned(RunSpec.model_validate(record.spec),
                                                suite_service.load_record(session, suite_record))}
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


def update_labels(session: Session, run_id: int, changes: dict[str, Any]) -> RunPublic:
    """Rename, tag or annotate a run (``changes``: the fields the client sent of :class:`RunUpdate`)."""
    record = get_record(session, run_id)
    if "name" in changes:
        record.name = (changes["name"] or "").strip() or None
    if "tags" in changes:
        record.tags = list(dict.fromkeys(t.strip() for t in changes["tags"] or [] if t.strip())) or None
    if "notes" in changes:
        record.notes = (changes["notes"] or "").strip() or None
    session.add(record)
    session.commit()
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


def headlines(session: Session, records: list[RunRecord]) -> dict[int, list[RunHeadline]]:
    """Each run's primary score per endpoint × strategy (one query per distinct primary scorer)."""
    by_scorer: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        scorers = r.spec.get("scorers") or []
        if scorers and r.id is not None:
            by_scorer[scorers[0]].append(r)
    out: dict[int, list[RunHeadline]] = {}
    for scorer, runs in by_scorer.items():
        rows = crud.headline_rows(session, run_ids=[r.id or 0 for r in runs], scorer=scorer)
        found: dict[int, dict[tuple[str, str], Any]] = defaultdict(dict)
        for run_id, endpoint, strategy, mean, n, _first in rows:
            found[run_id][(endpoint, strategy)] = (mean, n)
        for r in runs:
            order = [(e["name"], s.get("label") or _key(s)) for e in r.spec.get("endpoints", [])
                     for s in r.spec.get("strategies", [])]
            seen = found.get(r.id or 0, {})
            out[r.id or 0] = [RunHeadline(endpoint=e, strategy=k, scorer=scorer,
                                          mean=None if seen.get((e, k), (None, 0))[0] is None
                                          else float(seen[(e, k)][0]), n=int(seen.get((e, k), (None, 0))[1]))
                              for e, k in order]
    return out


def _key(strategy: dict[str, Any]) -> str:
    from evals import StrategySpec

    return StrategySpec.model_validate(strategy).key


def to_public(session: Session, records: list[RunRecord]) -> list[RunPublic]:
    # a finished run's counts, sums and headline scores no longer change: aggregated once, then stored
    stored = run_views.stored_many(session, records, "progress", [])
    grouped: dict[int, list[Any]] = defaultdict(list, {i: json.loads(body) for i, body in stored.items()})
    ids = [r.id for r in records if r.id is not None and r.id not in stored]
    if ids:
        for run_id, outcome, n, prompt, completion, cached, cost in crud.progress_rows(session, run_ids=ids):
            grouped[run_id].append([run_id, outcome, int(n), int(prompt), int(completion), int(cached), float(cost)])
        for r in records:
            if r.id in ids and r.status not in ACTIVE_STATUSES:
                run_views.put(session, r, "progress", [], json.dumps(grouped.get(r.id, [])).encode())
    stored_heads = run_views.stored_many(session, records, "headline", [])
    heads = {i: [RunHeadline.model_validate(h) for h in json.loads(body)] for i, body in stored_heads.items()}
    missing = [r for r in records if r.id is not None and r.id not in stored_heads]
    if missing:
        computed = headlines(session, missing)
        heads.update(computed)
        for r in missing:
            if r.status not in ACTIVE_STATUSES:
                run_views.put(session, r, "headline", [], json.dumps(
                    [h.model_dump(mode="json") for h in computed.get(r.id or 0, [])]).encode())
    now = utcnow()
    out = []
    for r in records:
        recent = None
        if r.status == RunStatus.running and r.started_at is not None:
            recent = crud.count_cases_since(session, run_id=r.id or 0, since=r.started_at)
        out.append(RunPublic(
            id=r.id or 0, name=r.name, tags=list(r.tags or []), notes=r.notes, headline=heads.get(r.id or 0, []),
            suite_id=r.suite_id, status=r.status, attempt=r.attempt,  # type: ignore[arg-type]
            total_cases=r.total_cases, rerun_of=r.rerun_of, error=r.error, spec_hash=r.spec_hash,
            spec=RunSpec.model_validate(r.spec), created_at=as_utc(r.created_at),  # type: ignore[arg-type]
            started_at=as_utc(r.started_at), finished_at=as_utc(r.finished_at),
            progress=_progress(r, grouped.get(r.id or 0, []), recent, now), checks=list(r.checks or []),
            baseline_run_id=r.baseline_run_id))
    return out


# Statuses after which a run's checks are judged; a run that did not complete fails its gate.
GATE_FAILS = {RunStatus.failed.value, RunStatus.cancelled.value}


def check_results(session: Session, record: RunRecord) -> list[CheckResult]:
    """The run's checks judged on its stored cases (and its baseline's)."""
    from app.services import statistics

    run_id = record.id or 0
    rows = statistics.case_rows(session, run_id)
    summary = statistics.summary(session, run_id, rows=rows)
    baseline = None
    if record.baseline_run_id is not None:
        baseline = statistics.case_rows(session, record.baseline_run_id)
    return evaluate_checks(parse_checks(record.checks or []), rows, summary, baseline=baseline)


def get(session: Session, run_id: int) -> RunPublic:
    record = get_record(session, run_id)
    public = to_public(session, [record])[0]
    if record.checks and record.status not in ACTIVE_STATUSES:
        public.check_results = check_results(session, record)
        public.checks_passed = (record.status not in GATE_FAILS
                                and all(c.passed for c in public.check_results))
    return public


def list_public(session: Session, *, offset: int, limit: int, status: str | None,
                suite_id: int | None, tag: str | None = None) -> RunsPublic:
    records, count = crud.list_runs(session, offset=offset, limit=limit, status=status, suite_id=suite_id,
                                    tag=tag)
    return RunsPublic(data=to_public(session, records), count=count)
