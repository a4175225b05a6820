"""Durable execution of runs with DBOS, in chunks of cases.

A run is the workflow ``ctxeval.run``: one step plans the cases not yet stored and cuts them into
chunks per endpoint (:func:`app.execution.dispatch.chunk_size`); each chunk is a child workflow
``ctxeval.chunk`` enqueued on its endpoint's queue, whose global concurrency counts chunks (slots)
across every process; a chunk runs at most ``lanes`` of its cases at a time, so the endpoint never
sees more than its ``concurrency`` requests. A chunk is one preemptible step whose checkpoint is the
stored case rows: it reads which of its cases are stored, executes the others, and hands each result
to the process's group-commit writer (:mod:`app.execution.writer`) as soon as it is ready, waiting
until it is committed. So a process killed at any point (SIGKILL included) loses no finished case,
and recovery (same executor id, or any live executor once this one is seen dead, see
:mod:`app.execution.workers`) re-runs only the cases with no stored row: one stored result per case.

A chunk does not wait for its queue's next poll: the run workflow claims its chunks right after
enqueueing them, and a chunk, once settled, claims the next one of its partition (the claim DBOS's
poller makes, so the limit holds; the poller still starts whatever these claims miss).

The chunk that stores a run's last case marks the run completed at once; the run workflow's last step
does the same for runs that end otherwise (cases that could not be stored fail the run with the
count). A chunk first checks that its run still wants it (not cancelled, deleted, or superseded by a
later attempt), so a stale queued chunk never calls the endpoint.

Cases sharing a long prompt prefix wait for the first of their group (the leader): leaders run in
chunks of their own first, so the server's prefix cache is warm when the others arrive.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from dbos import DBOS, DBOSClient, SetWorkflowID
from sqlalchemy.engine import Engine as DbEngine

from app import crud, log_scrub
from app.db import make_engine, normalise_url, session_scope
from app.execution import heap
from app.execution.dispatch import (
    APP_NAME,
    APP_VERSION,
    CHUNK_WORKFLOW,
    CHUNKS_QUEUE,
    RUN_WORKFLOW,
    chunk_size,
    chunk_workflow_id,
    queue_shape,
    register_queues,
    run_workflow_id,
    slot_key,
)
from app.execution.engines import EngineCache
from app.execution.workers import Heartbeat, SqliteExecutorLock, dbos_pending_owners, dbos_recover
from app.execution.writer import CaseWriter, ProcessCaseWriter
from app.models import RunStatus, utcnow
from app.services import cases as case_service
from app.services import run_views
from app.services.cache import DbResponseCache
from app.settings import Settings
from evals import CaseResult, Outcome, prefix_waves, scrub

log = logging.getLogger("ctxeval.execution")

NOTIFY_COALESCE_S = 1.0
FINISH_GRACE_S = 2.0  # how long stopping waits for run workflows of this process to finish


@dataclass
class Runtime:
    settings: Settings
    db: DbEngine
    engines: EngineCache
    writer: CaseWriter | ProcessCaseWriter
    cache: DbResponseCache
    heartbeat: Heartbeat | None = None
    lock: SqliteExecutorLock | None = None
    loop: asyncio.AbstractEventLoop | None = None  # where DBOS runs this process's workflows
    queues_registered: bool = False  # the runs and chunk queues were registered before launch


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the executor is not started in this process")
    return _runtime


def _register_before_launch(settings: Settings) -> None:
    """The runs and chunk queues, so DBOS's first listing at launch already polls them (it lists
    queues again only once a second)."""
    client = DBOSClient(system_database_url=settings.dbos_system_database_url, application_name=APP_NAME)
    try:
        register_queues(client, polling_interval_s=settings.queue_polling_interval_s)
    finally:
        client.destroy()


def _case_writer(settings: Settings, db: DbEngine, cache: DbResponseCache) -> CaseWriter | ProcessCaseWriter:
    """The writer process where another process can open the database (it also answers the cache's
    reads); a thread for an in-memory database or when the settings ask for one."""
    in_memory = settings.is_sqlite and settings.sqlite_path is None
    elsewhere = db.url.render_as_string(hide_password=False) != normalise_url(settings.database_url)
    if settings.case_writer == "thread" or in_memory or elsewhere:
        return CaseWriter(db, cache)
    writer = ProcessCaseWriter(settings.database_url, cache)
    cache.reader = writer.get_many
    return writer


async def start_executor(settings: Settings, *, db: DbEngine | None = None,
                         transport: httpx.AsyncBaseTransport | None = None) -> Runtime:
    """Launch DBOS on the running event loop: it recovers this executor's unfinished work, then
    executes queued work. Chunk workflows run on this loop.

    Raises :class:`app.execution.workers.ExecutorRefused` when another executor holds this SQLite
    database."""
    global _runtime
    log_scrub.install()  # a worker's logs are scrubbed of keys as the service's are
    if _runtime is not None:
        raise RuntimeError("an executor is already running in this process")
    lock = None
    if settings.is_sqlite and settings.sqlite_path is not None:
        lock = SqliteExecutorLock(settings.sqlite_path.resolve(), settings.executor_id)
        lock.acquire()
    own_db = db is None
    db = db or make_engine(settings.database_url)
    cache = DbResponseCache(db, deferred=True)
    writer = _case_writer(settings, db, cache)
    heartbeat = Heartbeat(db, settings.executor_id, interval_s=settings.heartbeat_interval_s,
                          timeout_s=settings.worker_timeout_s, recover=dbos_recover,
                          pending_owners=dbos_pending_owners)
    _runtime = Runtime(settings=settings, db=db, writer=writer, cache=cache, heartbeat=heartbeat, lock=lock,
                       loop=asyncio.get_running_loop(),
                       engines=EngineCache(db, size=settings.engine_cache_size, transport=transport, cache=cache,
                                           index_dir=settings.index_cache_path))
    try:
        await asyncio.to_thread(heartbeat.start)  # before launch: nobody takes this id for dead
        try:
            await asyncio.to_thread(_register_before_launch, settings)
            _runtime.queues_registered = True
        except Exception as e:  # registered by the API when the run starts, at worst a second later
            log.warning("queues not registered before launch: %s", e)
        DBOS(config={
            "name": APP_NAME,
            "system_database_url": settings.dbos_system_database_url,
            "application_version": APP_VERSION,
            "executor_id": settings.executor_id,
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.2,
            # DBOS pushes coalesced LISTEN/NOTIFY wake-ups for workflow events and streams (PostgreSQL)
            # from a thread that wakes every 10 ms by default and takes the interpreter lock from the
            # loop executing the cases each time; ctxeval uses neither events nor streams
            "notification_coalesce_sec": NOTIFY_COALESCE_S,
        })
        DBOS.launch()
        heartbeat.start_reaping()
        if isinstance(writer, ProcessCaseWriter) and not await asyncio.to_thread(writer.wait_ready, 60):
            log.warning("the case writer process is not ready; cases wait for it")
        heap.tune()  # the heap so far is the app's and the libraries': out of the collector's way
    except BaseException:
        _runtime = None
        writer.close()
        DBOS.destroy()
        heartbeat.stop()
        if lock is not None:
            lock.release()
        if own_db:
            db.dispose()
        raise
    return _runtime


async def stop_executor() -> None:
    """Close this process's engines and shut DBOS down. Unfinished workflows stay PENDING; the row
    of this executor is marked stopped, so another live executor hands them back to the queues at
    its next heartbeat (or this executor id recovers them when it starts again)."""
    global _runtime
    rt = _runtime
    if rt is not None:
        if rt.heartbeat is not None:
            rt.heartbeat.stop_reaping()
        await _let_runs_finish(FINISH_GRACE_S)
        await rt.engines.close_all()
    await asyncio.to_thread(DBOS.destroy, workflow_completion_timeout_sec=0)
    if rt is not None:  # DBOS shut the loop's default executor down: these block briefly instead
        rt.writer.close()
        if rt.heartbeat is not None:
            rt.heartbeat.stop()
        if rt.lock is not None:
            rt.lock.release()
        heap.release()
    _runtime = None


_running_here: set[int] = set()  # run ids whose run workflow is executing in this process
_settled: set[int] = set()  # run ids a chunk of this process has completed (or failed)


async def _let_runs_finish(grace_s: float) -> None:
    """Give the run workflows of this process whose run is already settled a moment to end before
    DBOS shuts down: the last chunk has completed the run, but its workflow still waits for the
    chunks' results and stores the run's views (shut down under it, DBOS logs the workflow's failure
    although the run is complete). Runs still executing do not delay the stop; a workflow still
    going after ``grace_s`` stays pending, and whoever recovers it finishes it."""
    deadline = time.monotonic() + grace_s
    while _running_here & _settled and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def start_run_here(run_id: int, attempt: int) -> str:
    """Start the run's workflow on this process's executor at once (the API process executes: no wait
    for the runs queue's next poll). Called from a thread other than the executor's loop; the workflow
    id is the one the queue would use, so a second start of the attempt is the same workflow."""
    rt = runtime()
    if rt.loop is None or rt.loop.is_closed():
        raise RuntimeError("the executor's event loop is not running")
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if here is rt.loop:
        raise RuntimeError("start_run_here would block the executor's own loop")

    async def start() -> str:
        with SetWorkflowID(run_workflow_id(run_id, attempt)):
            handle = await DBOS.start_workflow_async(run_workflow, run_id, attempt)
        return handle.get_workflow_id()

    return asyncio.run_coroutine_threadsafe(start(), rt.loop).result(timeout=60)


# ---------------------------------------------------------------------------------------- run steps
def _start(run_id: int, attempt: int) -> tuple[set[str], dict[str, int]] | None:
    """Mark the run running; the ids of its stored cases and each endpoint's concurrency (the stored
    endpoint's current value, as its queue was registered), or None when the run no longer wants
    this attempt."""
    with session_scope(runtime().db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None or run.attempt != attempt or run.status not in (RunStatus.queued, RunStatus.running):
            return None
        run.status = RunStatus.running.value
        run.started_at = utcnow()
        session.add(run)
        session.flush()
        limits = {}
        for public in run.spec.get("endpoints", []):
            record = crud.get_endpoint_by_name(session, name=public["name"])
            limits[public["name"]] = int(record.config.get("concurrency", public.get("concurrency", 1))
                                         if record else public.get("concurrency", 1))
        return crud.stored_case_ids(session, run_id=run_id), limits


def _fail(run_id: int, attempt: int, message: str) -> None:
    with session_scope(runtime().db) as session:
        crud.fail_run_attempt(session, run_id=run_id, attempt=attempt, error=scrub(message)[:2000],
                              statuses=(RunStatus.queued.value, RunStatus.running.value))


def _finish(run_id: int, attempt: int, *, only_if_complete: bool = False) -> str:
    """Settle the attempt: completed once every case is stored; otherwise failed with the count of
    missing cases (or, with ``only_if_complete``, left running)."""
    with session_scope(runtime().db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None or run.attempt != attempt or run.status != RunStatus.running:
            return run.status if run else "deleted"
        stored = crud.count_cases(session, run_id=run_id)
        if stored >= run.total_cases:
            run.status, run.error = case_service.run_verdict(session, run)
        elif only_if_complete:
            return run.status
        else:
            run.status = RunStatus.failed.value
            run.error = f"{run.total_cases - stored} case(s) have no stored result; resume the run"
        run.finished_at = utcnow()
        session.add(run)
        return run.status


def _chunks(items: list[dict[str, Any]], limits: dict[str, int]) -> list[dict[str, Any]]:
    """``items`` (in plan order) cut into chunks per endpoint."""
    by_endpoint: dict[str, list[int]] = {}
    for item in items:
        by_endpoint.setdefault(item["endpoint"], []).append(item["position"])
    chunks = []
    for endpoint, positions in by_endpoint.items():
        concurrency = limits.get(endpoint, 1)
        size = chunk_size(concurrency, len(positions))
        slots, lanes = queue_shape(concurrency)
        chunks += [{"endpoint": endpoint, "lanes": lanes, "slot": k % slots, "positions": positions[i:i + size]}
                   for k, i in enumerate(range(0, len(positions), size))]
    return chunks


@DBOS.step(name="ctxeval.plan_run")
async def plan_run(run_id: int, attempt: int) -> dict[str, Any] | None:
    """Start the attempt and cut the cases it still has to execute into chunks: first the leaders of
    prefix groups that have followers (waited for), with every case outside such a group; then the
    followers."""
    started = await asyncio.to_thread(_start, run_id, attempt)
    if started is None:
        return None
    stored, limits = started
    try:  # builds this process's engine for the run: a spec the engine refuses fails the run here
        async with runtime().engines.use(run_id) as run_engine:
            plans = run_engine.ordered
    except Exception as e:
        log.warning("run %s cannot start: %s", run_id, e)
        await asyncio.to_thread(_fail, run_id, attempt, f"{type(e).__name__}: {e}")
        return None
    todo = [{"endpoint": p.endpoint, "position": i, "group": p.prefix_group}
            for i, p in enumerate(plans) if p.case_id not in stored]
    waves = prefix_waves(todo, lambda item: item["group"])  # the in-memory runner's ordering too
    leaders = [leader for g, leader in waves.leaders.items() if g in waves.followers]  # waited for
    waited = {id(item) for item in leaders}
    plain = [item for item in waves.first if id(item) not in waited]
    followers = [item for items in waves.followers.values() for item in items]
    followers.sort(key=lambda item: item["position"])
    first = _chunks(leaders, limits)
    return {"first": first + _chunks(plain, limits), "leaders": len(first), "later": _chunks(followers, limits)}


@DBOS.step(name="ctxeval.finish_run")
async def finish_run(run_id: int, attempt: int) -> str:
    status = await asyncio.to_thread(_finish, run_id, attempt)
    await runtime().engines.drop(run_id)
    # the finished run's summary and report data, stored so that their first view is a read
    await asyncio.to_thread(run_views.warm, runtime().db, run_id)
    return status


async def _enqueue_chunk(run_id: int, attempt: int, index: int, chunk: dict[str, Any]) -> Any:
    options: Any = {"workflow_name": CHUNK_WORKFLOW, "queue_name": CHUNKS_QUEUE,
                    "queue_partition_key": slot_key(chunk["endpoint"], chunk["slot"]),
                    "workflow_id": chunk_workflow_id(run_id, attempt, index), "app_version": APP_VERSION}
    return await DBOS.enqueue_workflow_with_options_async(options, run_id, attempt, chunk["endpoint"],
                                                          chunk["lanes"], chunk["positions"])


def _claim_budget() -> int:
    """How many chunks one claim may take: all of them for an executor alone, one where other
    executors are alive (their pollers take the rest, so a run's chunks spread over the workers)."""
    heartbeat = runtime().heartbeat
    alone = heartbeat is None or heartbeat.live_peers == 0
    return sys.maxsize if alone else 1


def _claim_chunks(after: str | None = None) -> int:
    """Start the chunk workflows this process may start now instead of waiting for the chunk queue's
    next poll (up to 0.5 s). It is the claim DBOS's own poller makes for a queue of partition
    concurrency 1 (one transaction; a partition with a chunk running anywhere is skipped), so the
    per-endpoint limit holds as it does for the poller; the two may claim at the same moment, and
    each queued chunk is claimed once. ``after``: a chunk workflow that has just returned; the claim
    waits (up to 0.5 s) until DBOS has settled it, so the next chunk of its partition can start. This reaches into DBOS 3.4 internals (no public call wakes a
    queue up): on any error the chunks simply wait for the next poll."""
    from dbos._core import execute_dequeued_workflow
    from dbos._dbos import _get_dbos_instance
    from dbos._utils import GlobalParams, generate_uuid

    dbos = _get_dbos_instance()
    sys_db = dbos._sys_db
    if after is not None:  # a chunk's partition is free once its workflow is settled: wait for that
        for _ in range(50):
            status = sys_db.get_workflow_status(after)
            if status is None or status["status"] != "PENDING":
                break
            time.sleep(0.01)
        else:
            return 0
    queue = sys_db.get_queue(CHUNKS_QUEUE)
    if queue is None:
        return 0
    owner = generate_uuid()
    ids = sys_db.start_queued_partitioned_workflows(queue, GlobalParams.executor_id, GlobalParams.app_version,
                                                    _claim_budget(), owner_xid=owner)
    statuses = {s["workflow_uuid"]: s for s in sys_db.get_workflow_statuses(ids)} if ids else {}
    for workflow_id in ids:
        status = statuses.get(workflow_id) or sys_db.get_workflow_status(workflow_id)
        if status is not None:
            execute_dequeued_workflow(dbos, status, owner)
    return len(ids)


async def _start_chunks(after: str | None = None) -> None:
    """:func:`_claim_chunks` on a thread, outside any workflow's context: DBOS keeps the calling
    workflow in a context variable (which ``asyncio.to_thread`` would carry over), and a chunk started
    there would count as an operation of that workflow, so its recovery on another executor, claiming
    a different number, would replay out of step."""
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, contextvars.Context().run, _claim_chunks, after)
    except Exception as e:  # an optimisation only: the queue's poller starts them
        log.debug("chunks left to the queue's poller: %s", e)


_claims: set[asyncio.Task[None]] = set()  # claims running in the background (kept from the collector)


async def _wait(handle: Any, polling_s: float) -> None:
    try:
        await handle.get_result(polling_interval_sec=polling_s)
    except RuntimeError as e:  # this process is shutting down: whoever recovers the run waits again
        log.debug("chunk workflow %s: %s", handle.get_workflow_id(), e)
    except Exception as e:  # a chunk that failed or was cancelled leaves its cases unstored
        log.warning("chunk workflow %s: %s", handle.get_workflow_id(), e)


@DBOS.workflow(name=RUN_WORKFLOW)
async def run_workflow(run_id: int, attempt: int) -> str:
    _running_here.add(run_id)
    try:
        return await _run_attempt(run_id, attempt)
    finally:
        _running_here.discard(run_id)
        _settled.discard(run_id)


async def _run_attempt(run_id: int, attempt: int) -> str:
    plan = await plan_run(run_id, attempt)
    if plan is None:
        return "skipped"
    polling = runtime().settings.queue_polling_interval_s
    handles = []
    for i, c in enumerate(plan["first"]):
        handles.append(await _enqueue_chunk(run_id, attempt, i, c))
        if i == 0 and len(plan["first"]) > 1:  # its requests go out while the others are enqueued
            await _start_chunks()
    await _start_chunks()
    for handle in handles[:plan["leaders"]]:  # followers start once their leader is answered
        await _wait(handle, min(polling, 0.05))
    offset = len(handles)
    handles += [await _enqueue_chunk(run_id, attempt, offset + i, c) for i, c in enumerate(plan["later"])]
    if plan["later"]:
        await _start_chunks()
    for handle in handles:  # the last chunk completes the run; this only settles what is left
        await _wait(handle, max(polling, 0.5))
    return await finish_run(run_id, attempt)


# --------------------------------------------------------------------------------------- chunk step
def _chunk_todo(run_id: int, attempt: int, case_ids: list[str]) -> set[str] | None:
    """Which of the chunk's cases are stored already, or None when the run no longer wants them."""
    with session_scope(runtime().db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None or run.attempt != attempt or run.status != RunStatus.running:
            return None
        return crud.stored_among(session, run_id=run_id, case_ids=case_ids)


def internal_error_result(plan: Any, exc: BaseException) -> CaseResult:
    return CaseResult(case_id=plan.case_id, question_id=plan.question_id, endpoint=plan.endpoint,
                      strategy=plan.strategy.key, strategy_name=plan.strategy.name, outcome=Outcome.error,
                      error_class="internal_error", error_message=f"{type(exc).__name__}: {exc}")


@DBOS.step(name="ctxeval.execute_chunk", preemptible=True)
async def execute_chunk(run_id: int, attempt: int, endpoint: str, lanes: int, positions: list[int]) -> dict[str, int]:
    rt = runtime()
    outcomes: Counter[str] = Counter()
    async with rt.engines.use(run_id) as run_engine:
        plans = [(p, run_engine.ordered[p]) for p in positions]
        stored = await asyncio.to_thread(_chunk_todo, run_id, attempt, [plan.case_id for _, plan in plans])
        if stored is None:
            return {"skipped": len(plans)}
        outcomes["stored_before"] = len(stored)
        slots = asyncio.Semaphore(max(1, lanes))
        gone = asyncio.Event()

        async def one(position: int, plan: Any) -> str:
            async with slots:
                if gone.is_set():
                    return "discarded"
                with rt.writer.executing_case():
                    try:
                        result = await run_engine.engine.execute(plan)
                    except Exception as e:  # the engine keeps endpoint faults as data; anything else is a bug
                        log.exception("case %s of run %s raised", plan.case_id, run_id)
                        result = internal_error_result(plan, e)
            # the lane takes its next case while this one is committed; the chunk (and with it the
            # step DBOS checkpoints) ends only once every case of it is committed or known unstored
            try:
                stored = await rt.writer.store(run_id, position, result, run_engine.shared_texts(plan))
            except Exception as e:  # left unstored, and no new case started: the run ends failed with
                log.error("case %s of run %s could not be stored: %s", plan.case_id, run_id, e)
                gone.set()  # the count of missing cases, and resume executes them
                return "unstored"
            if not stored:
                gone.set()  # the run was deleted: ask the endpoint nothing more for it
                return "discarded"
            return str(result.outcome.value)

        outcomes.update(await asyncio.gather(*(one(pos, plan) for pos, plan in plans
                                               if plan.case_id not in stored)))
    if await asyncio.to_thread(_finish, run_id, attempt, only_if_complete=True) != RunStatus.running:
        if run_id in _running_here:
            _settled.add(run_id)
        await rt.engines.drop(run_id)
    return dict(outcomes)


@DBOS.workflow(name=CHUNK_WORKFLOW)
async def chunk_workflow(run_id: int, attempt: int, endpoint: str, lanes: int, positions: list[int]) -> dict[str, int]:
    outcomes = await execute_chunk(run_id, attempt, endpoint, lanes, positions)
    # the next chunk of this partition starts once this workflow is settled, not at the next poll
    workflow_id = DBOS.workflow_id
    if workflow_id is not None:
        task = asyncio.get_running_loop().create_task(_start_chunks(after=workflow_id), context=contextvars.Context())
        _claims.add(task)
        task.add_done_callback(_claims.discard)
    return outcomes
