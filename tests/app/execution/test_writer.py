"""The group-commit writer, on a thread and in its child process: cases finished together share a
transaction, a deleted run's cases are discarded, a case the database refuses does not take the others
with it, held cache entries are written with the cases; the child answers cache reads, a dead child
fails what it had and is replaced, and a child whose parent vanished commits what it received."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from app import crud
from app.db import make_engine, session_scope
from app.execution.writer import CaseWriter, ProcessCaseWriter
from app.models import CachedResponse, CaseRecord, PromptBlob
from app.services.cache import DbResponseCache
from tests.app.helpers import case_result, stored_run


@pytest.fixture
def db(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["thread", "process"])
def new_writer(request, database_url):
    """Makes the writer under test on ``database_url`` (the process writer also answers cache reads)."""
    def make(db, cache=None):
        if request.param == "thread":
            return CaseWriter(db, cache)
        writer = ProcessCaseWriter(str(db.url.render_as_string(hide_password=False)), cache)
        if cache is not None:
            cache.reader = writer.get_many
        assert writer.wait_ready(60)
        return writer
    return make


def _run(db, n_questions=8):
    with session_scope(db) as s:
        return stored_run(s, n_questions=n_questions, strategies=("long_context",)).id


async def _store_all(writer, run_id, results, shared=()):
    with writer.executing_case():  # as a chunk does: others still executing make the writer wait a little
        tasks = [asyncio.ensure_future(writer.store(run_id, i, r, shared)) for i, r in enumerate(results)]
        await asyncio.sleep(0)
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_cases_finished_together_share_a_transaction_with_the_held_cache(db, new_writer):
    run_id = _run(db)
    cache = DbResponseCache(db, deferred=True)
    writer = new_writer(db, cache)
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


def test_a_long_prompt_goes_to_one_blob_for_the_run(db, new_writer):
    run_id = _run(db, 3)
    block = "[Document 1: d]\n" + "x" * 10_000
    results = [case_result(f"q{i}", "long_context",
                           prompt=[{"role": "user", "content": f"Documents:\n\n{block}\n\nQuestion: q{i}?"}])
               for i in range(3)]
    writer = new_writer(db)
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


def test_a_deleted_runs_cases_are_discarded_and_the_others_stored(db, new_writer):
    keep = _run(db, 2)
    with session_scope(db) as s:
        gone = stored_run(s, n_questions=2, strategies=("rag",)).id
        crud.delete_run(s, record=crud.get_run(s, run_id=gone))
    writer = new_writer(db)
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
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_case_the_database_refuses_does_not_take_the_others(fresh_pg_url, kind):
    db = make_engine(fresh_pg_url)
    run_id = _run(db, 3)
    bad = case_result("q1", "long_context", error_class="e" * 150)  # longer than the column
    writer = CaseWriter(db) if kind == "thread" else ProcessCaseWriter(fresh_pg_url)
    try:
        got = asyncio.run(_store_all(writer, run_id, [case_result("q0", "long_context"), bad,
                                                      case_result("q2", "long_context")]))
    finally:
        writer.close()
    assert got[0] is True and got[2] is True and isinstance(got[1], Exception)
    with session_scope(db) as s:
        assert crud.count_cases(s, run_id=run_id) == 2
    db.dispose()


def test_the_writer_process_answers_cache_reads_from_the_database_and_from_entries_not_yet_committed(db):
    run_id = _run(db, 2)
    with session_scope(db) as s:
        crud.cache_put_many(s, rows=[("stored", {"text": "s"})])
    cache = DbResponseCache(db, deferred=True)
    writer = ProcessCaseWriter(db.url.render_as_string(hide_password=False), cache)
    cache.reader = writer.get_many
    try:
        async def go():
            assert await cache.get("stored") == {"text": "s"}  # read by the child
            assert await cache.get("missing") is None
            await cache.put("held", {"text": "h"})
            assert await writer.store(run_id, 0, case_result("q0", "long_context"))  # takes "held" along
            assert cache.take_pending() == []
            return await writer.get_many(["held", "stored", "missing"])
        assert asyncio.run(go()) == {"held": {"text": "h"}, "stored": {"text": "s"}}
        assert writer.transactions == 1 and writer.statements > 0
    finally:
        writer.close()


def test_a_dead_writer_process_fails_what_it_had_and_the_next_case_gets_a_new_one(db):
    import os
    import signal

    run_id = _run(db, 3)
    writer = ProcessCaseWriter(db.url.render_as_string(hide_password=False))
    assert writer.wait_ready(60)
    try:
        async def go():
            first = writer._child
            with writer.executing_case(), writer.executing_case():  # the child lingers for these
                waiting = asyncio.ensure_future(writer.store(run_id, 0, case_result("q0", "long_context")))
                await asyncio.sleep(0)
                os.kill(first.proc.pid, signal.SIGKILL)
                with pytest.raises(RuntimeError, match="exited"):
                    await asyncio.wait_for(waiting, 30)
            assert await writer.store(run_id, 1, case_result("q1", "long_context")) is True
            assert writer._child is not first
        asyncio.run(go())
    finally:
        writer.close()
    with session_scope(db) as s:
        assert crud.count_cases(s, run_id=run_id) in (1, 2)  # q1; q0 only if committed before the kill
        assert crud.get_case(s, run_id=run_id, case_id=case_result("q1", "long_context").case_id) is not None


def test_the_writer_process_is_driven_from_the_loop_without_threads_of_its_own(db):
    """Frames go out and replies come in on the event loop that stores the cases: no thread of this
    process wakes per case (one would take the interpreter lock from the loop executing them)."""
    import threading

    run_id = _run(db, 40)
    before = {t.ident for t in threading.enumerate()}
    writer = ProcessCaseWriter(db.url.render_as_string(hide_password=False))
    assert writer.wait_ready(60)
    try:

        async def go():
            got = await _store_all(writer, run_id, [case_result(f"q{i}", "long_context") for i in range(20)])
            started = [t.name for t in threading.enumerate() if t.ident not in before]
            more = [await writer.store(run_id, 20 + i, case_result(f"q{20 + i}", "long_context")) for i in range(20)]
            return got + more, started
        stored, started = asyncio.run(go())
        assert stored == [True] * 40
        assert started == []
        assert writer.transactions < 40  # the first twenty shared transactions
    finally:
        writer.close()
    with session_scope(db) as s:
        assert crud.count_cases(s, run_id=run_id) == 40


def test_the_writer_process_follows_its_caller_to_a_new_loop_and_replaces_a_child_that_died_unwatched(db):
    import os
    import signal

    run_id = _run(db, 3)
    writer = ProcessCaseWriter(db.url.render_as_string(hide_password=False))
    try:
        assert asyncio.run(writer.store(run_id, 0, case_result("q0", "long_context"))) is True
        assert asyncio.run(writer.store(run_id, 1, case_result("q1", "long_context"))) is True  # another loop
        first = writer._child
        os.kill(first.proc.pid, signal.SIGKILL)  # no loop is running: nobody reads its socket
        first.proc.wait(timeout=30)
        assert asyncio.run(writer.store(run_id, 2, case_result("q2", "long_context"))) is True
        assert writer._child is not first
    finally:
        writer.close()
    with session_scope(db) as s:
        assert crud.count_cases(s, run_id=run_id) == 3


def test_a_writer_process_whose_parent_vanished_commits_what_it_received(db):
    import socket
    import subprocess
    import sys

    from app.execution.writer_process import recv_frame, send_frame
    from app.services import cases as case_service

    run_id = _run(db, 2)
    result = case_result("q0", "long_context")
    light, detail, blobs = case_service.stored_fields(result, run_id=run_id, position=0)
    parent, child = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-m", "app.execution.writer_process", str(child.fileno())],
                            pass_fds=[child.fileno()])
    child.close()
    try:
        send_frame(parent, {"database_url": db.url.render_as_string(hide_password=False)})
        assert recv_frame(parent) == {"ready": True}
        # many cases still executing: the child would wait for them, but its parent goes away
        send_frame(parent, {"cases": [(1, run_id, light, detail, blobs)], "gets": [], "cache": [("k", {"text": "k"})],
                            "executing": 16, "close": False})
        parent.close()  # as a SIGKILLed parent's end closes
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with session_scope(db) as s:
        assert crud.get_case(s, run_id=run_id, case_id=result.case_id) is not None
        assert crud.cache_get_many(s, keys=["k"]) == {"k": {"text": "k"}}


def test_an_executor_writes_in_a_child_process_unless_the_database_is_in_memory_or_a_thread_is_asked(tmp_path):
    from app.execution.workflows import _case_writer
    from app.settings import Settings

    url = f"sqlite:///{tmp_path / 'a.db'}"
    db = make_engine(url)
    memory = make_engine("sqlite://")
    try:
        cache = DbResponseCache(db, deferred=True)
        writer = _case_writer(Settings(database_url=url), db, cache)
        try:
            assert isinstance(writer, ProcessCaseWriter) and cache.reader == writer.get_many
        finally:
            writer.close()
        for settings, engine in [(Settings(database_url=url, case_writer="thread"), db),
                                 (Settings(database_url="sqlite://", system_database_url=url), memory),
                                 (Settings(database_url=f"sqlite:///{tmp_path / 'other.db'}"), db)]:
            cache = DbResponseCache(engine, deferred=True)
            writer = _case_writer(settings, engine, cache)
            try:
                assert isinstance(writer, CaseWriter) and cache.reader is None
            finally:
                writer.close()
    finally:
        db.dispose()
        memory.dispose()
