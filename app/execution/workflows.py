"""Durable execution of runs with DBOS.

A run is the workflow ``ctxeval.run``: one step plans the cases not yet stored, then each case is a
child workflow ``ctxeval.case`` enqueued on its endpoint's queue (global concurrency = the endpoint's
``concurrency``, across every process), then one step marks the run completed. A case workflow is one
preemptible step that executes the case with the run's engine and commits the result at once, upserted
by (run, case). So a process killed at any point and restarted (same executor id) finishes the run
with exactly one stored result per case: finished cases are never executed again, and a case that
was in flight is executed again and stored once.

A case step first checks that its run still wants it (not cancelled, deleted, or superseded by a later
attempt), so a stale queued case never calls the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from dbos import DBOS
from sqlalchemy import update
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app import crud
from app.db import make_engine, session_scope
from app.execution.dispatch import (
    APP_NAME,
    APP_VERSION,
    CASE_WORKFLOW,
    RUN_WORKFLOW,
    RUNS_QUEUE,
    case_workflow_id,
    endpoint_queue,
)
from app.execution.engines import EngineCache
from app.models import RunRecord, RunStatus, utcnow
from app.services import cases as case_service
from app.services import run_views
from app.settings import Settings
from evals import CaseResult, Outcome, prefix_waves

log = logging.getLogger("ctxeval.execution")


@dataclass
class Runtime:
    settings: Settings
    db: DbEngine
    engines: EngineCache


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the executor is not started in this process")
    return _runtime


async def start_executor(settings: Settings, *, db: DbEngine | None = None,
                         transport: httpx.AsyncBaseTransport | None = None) -> Runtime:
    """Launch DBOS on the running event loop: it recovers this executor's unfinished work, then
    executes queued work. Case workflows run on this loop."""
    global _runtime
    if _runtime is not None:
        raise RuntimeError("an executor is already running in this process")
    db = db or make_engine(settings.database_url)
    _runtime = Runtime(settings=settings, db=db,
                       engines=EngineCache(db, size=settings.engine_cache_size, transport=transport,
                                           index_dir=settings.index_cache_path))
    try:
        DBOS(config={
            "name": APP_NAME,
            "system_database_url": settings.dbos_system_database_url,
            "application_version": APP_VERSION,
            "executor_id": settings.executor_id,
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.2,
        })
        DBOS.launch()
        await DBOS.register_queue_async(RUNS_QUEUE, polling_interval_sec=settings.queue_polling_interval_s,
                                        on_conflict="always_update")
    except BaseException:
        _runtime = None
        DBOS.destroy()
        raise
    return _runtime


async def stop_executor() -> None:
    """Close this process's engines and shut DBOS down; unfinished workflows stay PENDING and are
    recovered when an executor with the same id starts again."""
    global _runtime
    if _runtime is not None:
        await _runtime.engines.close_all()
    await asyncio.to_thread(DBOS.destroy, workflow_completion_timeout_sec=0)
    _runtime = None


# ---------------------------------------------------------------------------------------- run steps
def _start(run_id: int, attempt: int) -> set[str] | None:
    """Mark the run running; the ids of its stored cases, or None when the run no longer wants this attempt."""
    with session_scope(runtime().db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None or run.attempt != attempt or run.status not in (RunStatus.queued, RunStatus.running):
            return None
        run.status = RunStatus.running.value
        run.started_at = utcnow()
        session.add(run)
        session.flush()
        return crud.stored_case_ids(session, run_id=run_id)


def _fail(run_id: int, attempt: int, message: str) -> None:
    with session_scope(runtime().db) as session:
        session.execute(update(RunRecord).where(
            col(RunRecord.id) == run_id, col(RunRecord.attempt) == attempt,
            col(RunRecord.status).in_((RunStatus.queued.value, RunStatus.running.value)),
        ).values(status=RunStatus.failed.value, error=message[:2000], finished_at=utcnow()))


def _finish(run_id: int, attempt: int) -> str:
    with session_scope(runtime().db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None or run.attempt != attempt or run.status != RunStatus.running:
            return run.status if run else "deleted"
        stored = len(crud.stored_case_ids(session, run_id=run_id))
        if stored >= run.total_cases:
            run.status, run.error = case_service.run_verdict(session, run)
        else:
            run.status = RunStatus.failed.value
            run.error = f"{run.total_cases - stored} case(s) have no stored result; resume the run"
        run.finished_at = utcnow()
        session.add(run)
        return run.status


@DBOS.step(name="ctxeval.plan_run")
async def plan_run(run_id: int, attempt: int) -> list[dict[str, Any]] | None:
    """Start the attempt and list, in plan order, the cases it still has to execute."""
    stored = await asyncio.to_thread(_start, run_id, attempt)
    if stored is None:
        return None
    try:  # builds this process's engine for the run: a spec the engine refuses fails the run here
        async with runtime().engines.use(run_id) as run_engine:
            plans = run_engine.plans
    except Exception as e:
        log.warning("run %s cannot start: %s", run_id, e)
        await asyncio.to_thread(_fail, run_id, attempt, f"{type(e).__name__}: {e}")
        return None
    return [{"case_id": case_id, "endpoint": plan.endpoint, "position": i, "group": plan.prefix_group}
            for i, (case_id, plan) in enumerate(plans.items()) if case_id not in stored]


@DBOS.step(name="ctxeval.finish_run")
async def finish_run(run_id: int, attempt: int) -> str:
    status = await asyncio.to_thread(_finish, run_id, attempt)
    await runtime().engines.drop(run_id)
    # the finished run's summary and report data, stored so that their first view is a read
    await asyncio.to_thread(run_views.warm, runtime().db, run_id)
    return status


async def _enqueue_case(run_id: int, attempt: int, item: dict[str, Any]) -> Any:
    options: Any = {"workflow_name": CASE_WORKFLOW, "queue_name": endpoint_queue(item["endpoint"]),
                    "workflow_id": case_workflow_id(run_id, attempt, item["case_id"]), "app_version": APP_VERSION}
    return await DBOS.enqueue_workflow_with_options_async(options, run_id, attempt, item["case_id"],
                                                          item["position"])


async def _wait(handle: Any) -> None:
    try:
        await handle.get_result(polling_interval_sec=runtime().settings.queue_polling_interval_s)
    except Exception as e:  # a case workflow that failed or was cancelled leaves its case unstored
        log.warning("case workflow %s: %s", handle.get_workflow_id(), e)


@DBOS.workflow(name=RUN_WORKFLOW)
async def run_workflow(run_id: int, attempt: int) -> str:
    """Cases sharing a long prompt prefix wait for the first of their group (the leader) to finish,
    so the server's prefix cache is warm when they arrive; other cases start at once."""
    todo = await plan_run(run_id, attempt)
    if todo is None:
        return "skipped"
    waves = prefix_waves(todo, lambda item: item.get("group"))
    handles = {item["case_id"]: await _enqueue_case(run_id, attempt, item) for item in waves.first}
    later = []
    for group, leader in waves.leaders.items():
        await _wait(handles[leader["case_id"]])
        for item in waves.followers.get(group, []):
            later.append(await _enqueue_case(run_id, attempt, item))
    for handle in list(handles.values()) + later:
        await _wait(handle)
    return await finish_run(run_id, attempt)


# ---------------------------------------------------------------------------------------- case step
def _still_wanted(run_id: int, attempt: int, case_id: str) -> bool:
    with session_scope(runtime().db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None or run.attempt != attempt or run.status != RunStatus.running:
            return False
        return not crud.case_is_stored(session, run_id=run_id, case_id=case_id)


def _store(run_id: int, position: int, result: CaseResult) -> bool:
    try:
        with session_scope(runtime().db) as session:
            case_service.store(session, run_id=run_id, position=position, result=result)
        return True
    except IntegrityError:  # the run was deleted meanwhile
        return False


def internal_error_result(plan: Any, exc: BaseException) -> CaseResult:
    return CaseResult(case_id=plan.case_id, question_id=plan.question_id, endpoint=plan.endpoint,
                      strategy=plan.strategy.key, strategy_name=plan.strategy.name, outcome=Outcome.error,
                      error_class="internal_error", error_message=f"{type(exc).__name__}: {exc}")


@DBOS.step(name="ctxeval.execute_case", preemptible=True)
async def execute_case(run_id: int, attempt: int, case_id: str, position: int) -> str:
    rt = runtime()
    if not await asyncio.to_thread(_still_wanted, run_id, attempt, case_id):
        return "skipped"
    async with rt.engines.use(run_id) as run_engine:
        plan = run_engine.plans[case_id]
        try:
            result = await run_engine.engine.execute(plan)
        except Exception as e:  # the engine keeps endpoint faults as data; anything else is a bug, kept too
            log.exception("case %s of run %s raised", case_id, run_id)
            result = internal_error_result(plan, e)
    stored = await asyncio.to_thread(_store, run_id, position, result)
    return result.outcome.value if stored else "discarded"


@DBOS.workflow(name=CASE_WORKFLOW)
async def case_workflow(run_id: int, attempt: int, case_id: str, position: int) -> str:
    return await execute_case(run_id, attempt, case_id, position)
