"""One engine per run per process, built on first use and kept for the run's other cases.

An engine holds HTTP clients bound to the event loop that built it, so the cache is keyed by run and
loop. The least recently used engine is closed when more than ``size`` are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from app import crud
from app.db import session_scope
from app.errors import NotFoundError
from app.services import suites as suite_service
from app.services.cache import DbResponseCache
from app.services.plans import planned
from evals import EmbeddingSettings, Endpoint, IndexCache, RunSpec, Suite


@dataclass
class RunEngine:
    engine: Any  # evals.runner.Engine
    plans: dict[str, Any]  # case_id -> evals.runner.CasePlan
    positions: dict[str, int]
    ordered: list[Any] = field(default_factory=list)  # the plans by position
    _blocks: OrderedDict[tuple[str, ...], str] = field(default_factory=OrderedDict)

    def shared_texts(self, plan: Any) -> tuple[str, ...]:
        """Texts a case's prompt likely shares with other cases: its question's rendered documents
        (stored once per run, see ``prompt_store``)."""
        from evals import prompts

        suite = self.engine.suite
        docs = suite.context_documents(self.engine.questions[plan.question_id])
        key = tuple(d.id for d in docs)
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = prompts.render_documents(docs)
            while len(self._blocks) > 8:
                self._blocks.popitem(last=False)
        return (block,)


@dataclass
class RunInputs:
    """What an engine needs for a run: the frozen spec, the stored suite and every endpoint the spec
    names (tested, judge, embeddings) with its key read from the endpoint store."""

    spec: RunSpec
    suite: Suite
    endpoints: dict[str, Endpoint]
    judge: Endpoint | None
    embeddings: EmbeddingSettings | None


def _with_key(session: Session, public: dict[str, Any]) -> Endpoint:
    data = {k: v for k, v in public.items() if k != "has_api_key"}
    record = crud.get_endpoint_by_name(session, name=data["name"])
    # the key stored for the base URL this spec names, not whatever the endpoint points at now
    key = (crud.get_endpoint_key(session, endpoint_id=record.id, base_url=data["base_url"])
           if record and record.id else None)
    return Endpoint.model_validate({**data, "api_key": key})


def load_run_inputs(db: DbEngine, run_id: int) -> RunInputs:
    with session_scope(db) as session:
        run = crud.get_run(session, run_id=run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        spec = RunSpec.model_validate(run.spec)
        suite_record = crud.get_suite(session, suite_id=run.suite_id)
        assert suite_record is not None  # the foreign key forbids anything else
        suite = suite_service.load_record(session, suite_record)
        endpoints = {e["name"]: _with_key(session, e) for e in spec.endpoints}
        judge = _with_key(session, spec.judge) if spec.judge else None
        embeddings = None
        if spec.embeddings is not None:
            data = dict(spec.embeddings)
            endpoint = data.pop("endpoint", None)
            embeddings = EmbeddingSettings.model_validate(
                {**data, "endpoint": _with_key(session, endpoint) if endpoint else None})
    return RunInputs(spec, suite, endpoints, judge, embeddings)


def build(db: DbEngine, run_id: int, *, transport: httpx.AsyncBaseTransport | None = None,
          cache: DbResponseCache | None = None, index_cache: IndexCache | None = None) -> RunEngine:
    from evals import Engine, required_secrets

    inputs = load_run_inputs(db, run_id)
    # pipeline tokens (http_retriever/http_app token_env) come from this process's environment
    secrets = {n: os.environ[n] for n in required_secrets(inputs.spec) if os.environ.get(n)}
    engine = Engine(suite=inputs.suite, endpoints=inputs.endpoints, spec=inputs.spec,
                    cache=cache if cache is not None else DbResponseCache(db),
                    transport=transport, judge=inputs.judge, embeddings=inputs.embeddings, secrets=secrets,
                    index_cache=index_cache)
    plans = planned(inputs.spec, inputs.suite, strategies=engine.strategies)  # strategies built once, by the engine
    return RunEngine(engine=engine, plans={p.case_id: p for p in plans},
                     positions={p.case_id: i for i, p in enumerate(plans)}, ordered=plans)


class EngineCache:
    def __init__(self, db: DbEngine, *, size: int = 8, transport: httpx.AsyncBaseTransport | None = None,
                 cache: DbResponseCache | None = None, index_dir: Path | None = None) -> None:
        self._db = db
        self._size = size
        self._transport = transport
        self._cache = cache
        # one index cache for every run this process executes, kept on disk for the other processes
        self.indexes = IndexCache(directory=index_dir)
        self._engines: OrderedDict[tuple[int, int], RunEngine] = OrderedDict()
        self._users: dict[tuple[int, int], int] = {}
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    @asynccontextmanager
    async def use(self, run_id: int) -> AsyncIterator[RunEngine]:
        """The run's engine, built on first use; never closed while a case is using it."""
        key = (run_id, id(asyncio.get_running_loop()))
        self._users[key] = self._users.get(key, 0) + 1
        try:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                if key not in self._engines:
                    self._engines[key] = await asyncio.to_thread(build, self._db, run_id, transport=self._transport,
                                                                 cache=self._cache, index_cache=self.indexes)
            self._engines.move_to_end(key)
            yield self._engines[key]
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
            await self._evict()

    async def _evict(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        idle = [k for k in self._engines if k[1] == loop_id and k not in self._users]
        while len(self._engines) > self._size and idle:
            await self._close(self._engines.pop(idle.pop(0)))

    async def drop(self, run_id: int) -> None:
        """Close this loop's engine of ``run_id`` once no case uses it (the run finished)."""
        key = (run_id, id(asyncio.get_running_loop()))
        if key in self._users or key not in self._engines:
            return
        self._locks.pop(key, None)
        await self._close(self._engines.pop(key))

    async def close_all(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        for key in [k for k in self._engines if k[1] == loop_id]:
            await self._close(self._engines.pop(key))

    def __len__(self) -> int:
        return len(self._engines)

    @staticmethod
    async def _close(run_engine: RunEngine) -> None:
        with contextlib.suppress(Exception):  # best effort: the engine is dropped either way
            await run_engine.engine.aclose()
