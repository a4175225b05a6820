"""Case storage: one row per (run, case) whatever the replays; light rows without large fields."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app import crud
from app.db import make_engine, session_scope
from app.models import CaseDetailRecord, CaseRecord
from app.services import cases as case_service
from app.services.cache import DbResponseCache
from evals.domain import Outcome, RetrievedChunk
from tests.app.helpers import case_result, store, stored_run


@pytest.fixture
def db(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_a_replayed_case_is_stored_once_and_the_last_write_wins(db):
    with session_scope(db) as s:
        run = stored_run(s)
        first = case_result("q0", "rag", scores={"exact_match": 0.0})
        store(s, run, [first])
        store(s, run, [case_result("q0", "rag", scores={"exact_match": 1.0}, answer="second")])
        rows = s.exec(select(CaseRecord)).all()
        assert len(rows) == 1 and rows[0].scores == {"exact_match": 1.0}
        assert len(s.exec(select(CaseDetailRecord)).all()) == 1
        assert case_service.get_result(s, run_id=run.id, case_id=first.case_id).answer == "second"


def test_round_trip_of_every_field(db):
    chunk = RetrievedChunk(chunk_id="c1", doc_id="d0", start=0, end=10, score=1.5, rank=0, text="abc", gold=True)
    original = case_result("q1", "rag", retrieved=[chunk], route="rag", depth=25.0, context_tokens=900,
                           error_message=None, metadata={"retrieval": True}, steps=[{"step": 1}])
    with session_scope(db) as s:
        run = stored_run(s)
        store(s, run, [original])
        light, detail = crud.get_case(s, run_id=run.id, case_id=original.case_id)
        assert case_service.to_result(light, detail) == original
        without = case_service.to_result(light)
        assert without.answer == "" and without.prompt == [] and without.retrieved == []
        assert without.usage == original.usage and without.scores == original.scores


def test_filters_and_pagination(db):
    with session_scope(db) as s:
        run = stored_run(s, n_questions=4)
        results = []
        for i in range(4):
            results.append(case_result(f"q{i}", "long_context", scores={"exact_match": i / 4}))
            results.append(case_result(f"q{i}", "rag", scores={"exact_match": None}, outcome=Outcome.error))
        store(s, run, results)
        page = case_service.list_public(s, run_id=run.id, offset=1, limit=3)
        assert page.count == 8 and [c.position for c in page.data] == [1, 2, 3]
        lc = case_service.list_public(s, run_id=run.id, offset=0, limit=100, strategy="long_context")
        assert [c.question_id for c in lc.data] == ["q0", "q1", "q2", "q3"]
        high = case_service.list_public(s, run_id=run.id, offset=0, limit=100, scorer="exact_match", min_score=0.5)
        assert sorted(c.question_id for c in high.data) == ["q2", "q3"]
        band = case_service.list_public(s, run_id=run.id, offset=0, limit=100, scorer="exact_match",
                                        min_score=0.25, max_score=0.5)
        assert sorted(c.question_id for c in band.data) == ["q1", "q2"]
        errors = case_service.list_public(s, run_id=run.id, offset=0, limit=100, outcome="error")
        assert errors.count == 4 and {c.strategy for c in errors.data} == {"rag"}
        one = case_service.list_public(s, run_id=run.id, offset=0, limit=100, question_id="q3", endpoint="fake")
        assert one.count == 2


def test_iter_cases_reads_every_case_in_plan_order_in_batches(db):
    with session_scope(db) as s:
        run = stored_run(s, n_questions=7, strategies=("long_context",))
        store(s, run, [case_result(f"q{i}", "long_context") for i in range(7)])
        seen = [(light.question_id, detail is not None) for light, detail in
                crud.iter_cases(s, run_id=run.id, with_detail=True, batch=3)]
        assert seen == [(f"q{i}", True) for i in range(7)]
        assert all(d is None for _, d in crud.iter_cases(s, run_id=run.id, with_detail=False, batch=2))


async def test_response_cache_keeps_the_first_value(db):
    cache = DbResponseCache(db)
    assert await cache.get("k") is None
    await cache.put("k", {"text": "one"})
    await cache.put("k", {"text": "two"})
    assert await cache.get("k") == {"text": "one"}


async def test_cache_reads_asked_during_a_read_share_the_next_query(db):
    """Gets of one loop turn are one query; gets asked one by one while it is in flight wait for it and
    then go together into one more query: two queries for ten reads, each answered right."""
    import asyncio
    import threading

    cache = DbResponseCache(db)
    for i in range(10):
        await cache.put(f"k{i}", {"text": str(i)})
    queries: list[list[str]] = []
    release = threading.Event()  # the first read stays in flight until the second wave was asked
    original = cache._get_many

    def counted(keys: list[str]) -> dict:
        queries.append(sorted(keys))
        if len(queries) == 1:
            release.wait(10)
        return original(keys)

    cache._get_many = counted  # type: ignore[method-assign]
    first = [asyncio.ensure_future(cache.get(f"k{i}")) for i in range(4)]
    while not queries:  # the first read is in flight
        await asyncio.sleep(0.001)
    second = []
    for i in range(4, 10):  # each in a loop turn of its own
        second.append(asyncio.ensure_future(cache.get(f"k{i}")))
        await asyncio.sleep(0)
    release.set()
    values = await asyncio.gather(*first, *second)
    assert [v["text"] for v in values] == [str(i) for i in range(10)]
    assert queries == [[f"k{i}" for i in range(4)], sorted(f"k{i}" for i in range(4, 10))]


def test_deleting_a_run_deletes_its_cases(db):
    with session_scope(db) as s:
        run = stored_run(s)
        store(s, run, [case_result("q0", "rag")])
        crud.delete_run(s, record=run)
    with session_scope(db) as s:
        assert s.exec(select(CaseRecord)).all() == [] and s.exec(select(CaseDetailRecord)).all() == []
