"""One engine per run per process: built once, shared by the run's cases, closed when idle and over size."""

from __future__ import annotations

import asyncio

import pytest

from app.db import make_engine, session_scope
from app.execution import engines as engines_module
from app.execution.engines import EngineCache
from tests.app.helpers import stored_run


@pytest.fixture
def db(fresh_sqlite_url):
    engine = make_engine(fresh_sqlite_url)
    yield engine
    engine.dispose()


async def test_an_engine_is_built_once_per_run_and_shared(db, monkeypatch):
    with session_scope(db) as s:
        run_ids = [stored_run(s).id, stored_run(s).id, stored_run(s).id]
    builds: list[int] = []
    real_build = engines_module.build

    def counting_build(database, run_id, **kw):
        builds.append(run_id)
        return real_build(database, run_id, **kw)

    monkeypatch.setattr(engines_module, "build", counting_build)
    cache = EngineCache(db, size=2)

    async def use(run_id: int) -> object:
        async with cache.use(run_id) as run_engine:
            await asyncio.sleep(0.01)
            return run_engine

    first = await asyncio.gather(*(use(run_ids[0]) for _ in range(5)))
    assert builds == [run_ids[0]] and all(e is first[0] for e in first)
    assert len(first[0].plans) == 6 and list(first[0].positions.values()) == list(range(6))
    await use(run_ids[1])
    await use(run_ids[2])  # over size: the least recently used idle engine is closed
    assert len(cache) == 2
    again = await use(run_ids[0])
    assert again is not first[0] and builds == [run_ids[0], run_ids[1], run_ids[2], run_ids[0]]
    await cache.drop(run_ids[0])
    await cache.close_all()
    assert len(cache) == 0


async def test_an_engine_in_use_is_not_closed(db):
    with session_scope(db) as s:
        a, b = stored_run(s).id, stored_run(s).id
    cache = EngineCache(db, size=1)
    async with cache.use(a) as held:
        async with cache.use(b):
            pass
        assert len(cache) == 1  # b was closed instead of a, which a case still uses
        async with cache.use(a) as same:
            assert same is held
    await cache.close_all()
