"""The group-commit writer: cases finished together share a transaction, a deleted run's cases are
discarded, a case the database refuses does not take the others with it, held cache entries are
written with the cases."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from app import crud
from app.db import make_engine, session_scope
from app.execution.writer import CaseWriter
from app.models import CachedResponse, CaseRecord, PromptBlob
from app.services.cache import DbResponseCache
from tests.app.helpers import case_result, stored_run


@pytest.fixture
def db(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _run(db, n_questions=8):
    with session_scope(db) as s:
        return stored_run(s, n_questions=n_questions, strategies=("long_context",)).id


async def _store_all(writer, run_id, results, shared=()):
    with writer.executing_case():  # as a chunk does: others still executing make the writer wait a little
        tasks = [asyncio.ensure_future(writer.store(run_id, i, r, shared)) for i, r in enumerate(results)]
        await asyncio.sleep(0)
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_cases_finished_together_share_a_transaction_with_the_held_cache(db):
    run_id = _run(db)
    cache = DbResponseCache(db, deferred=True)
    writer = CaseWriter(db, cache)
    try:
        async def go():
            await cache.put("k1", {"text": "a"})
            assert await cache.get("k1") == {"text": "a"}  # a held entry answers reads already
            return await _store_all(writer, run_id, [case_result(f"q{i}", "long_context") for i in range(8)])
        assert asyncio.run(go()) == [True] * 8
        assert writer.transactions < 8
    finally:
        writer.close()
    with session_scope(db) as s:
        assert len(s.exec(select(CaseRecord).where(CaseRecord.run_id == run_id)).all()) == 8
        assert s.get(CachedResponse, "k1").value == {"text": "a"}


def test_a_long_prompt_goes_to_one_blob_for_the_run(db):
    run_id = _run(db, 3)
    block = "[Document 1: d]\n" + "x" * 10_000
    results = [case_result(f"q{i}", "long_context",
                           prompt=[{"role": "user", "content": f"Documents:\n\n{block}\n\nQuestion: q{i}?"}])
               for i in range(3)]
    writer = CaseWriter(db)
    try:
        assert asyncio.run(_store_all(writer, run_id, results, (block,))) == [True] * 3
    finally:
        writer.close()
    with session_scope(db) as s:
        blobs = s.exec(select(PromptBlob).where(PromptBlob.run_id == run_id)).all()
        assert [b.text for b in blobs] == [block]
        for i in range(3):
            got = crud.get_case(s, run_id=run_id, case_id=results[i].case_id)
            assert len(str(got[1].prompt)) < 300
    from app.services import cases as case_service

    with session_scope(db) as s:
        assert case_service.get_result(s, run_id=run_id, case_id=results[2].case_id).prompt == results[2].prompt


def test_a_deleted_runs_cases_are_discarded_and_the_others_stored(db):
    keep = _run(db, 2)
    with session_scope(db) as s:
        gone = stored_run(s, n_questions=2, strategies=("rag",)).id
        crud.delete_run(s, record=crud.get_run(s, run_id=gone))
    writer = CaseWriter(db)
    try:
        async def go():
            a = asyncio.ensure_future(writer.store(keep, 0, case_result("q0", "long_context")))
            b = asyncio.ensure_future(writer.store(gone, 0, case_result("q0", "rag")))
            return await asyncio.gather(a, b)
        assert asyncio.run(go()) == [True, False]
    finally:
        writer.close()
    with session_scope(db) as s:
        assert crud.count_cases(s, run_id=keep) == 1


@pytest.mark.postgres
def test_a_case_the_database_refuses_does_not_take_the_others(fresh_pg_url):
    db = make_engine(fresh_pg_url)
    run_id = _run(db, 3)
    bad = case_result("q1", "long_context", error_class="e" * 150)  # longer than the column
    writer = CaseWriter(db)
    try:
        got = asyncio.run(_store_all(writer, run_id, [case_result("q0", "long_context"), bad,
                                                      case_result("q2", "long_context")]))
    finally:
        writer.close()
    assert got[0] is True and got[2] is True and isinstance(got[1], Exception)
    with session_scope(db) as s:
        assert crud.count_cases(s, run_id=run_id) == 2
    db.dispose()
