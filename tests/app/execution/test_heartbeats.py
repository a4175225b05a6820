"""Heartbeats, dead executors and the one-executor rule of SQLite."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import crud
from app.db import make_engine, session_scope
from app.execution.workers import ExecutorRefused, Heartbeat, SqliteExecutorLock
from app.models import ExecutorRecord, utcnow
from app.services.workers import live_workers
from tests.app.execution.processes import ROOT, free_port, serving


@pytest.fixture
def db(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _heartbeat(db, executor_id, recovered, owners=frozenset()):
    def recover(ids):
        recovered.extend(ids)
        return len(ids)
    return Heartbeat(db, executor_id, interval_s=0.1, timeout_s=30, recover=recover,
                     pending_owners=lambda: set(owners))


def _age(db, executor_id, seconds):
    with session_scope(db) as s:
        s.execute(sa.update(ExecutorRecord).where(ExecutorRecord.executor_id == executor_id)
                  .values(last_seen=utcnow() - timedelta(seconds=seconds)))


def test_a_stale_executor_is_recovered_once_and_a_live_one_never(db):
    recovered: list[str] = []
    me = _heartbeat(db, "me", recovered)
    other = _heartbeat(db, "other", [])
    old = _heartbeat(db, "old", [])
    for hb in (me, other, old):
        hb.start()
    _age(db, "old", 31)
    assert me.reap() == ["old"] and recovered == ["old"]
    assert me.reap() == [] and recovered == ["old"]  # its row is gone: recovered once
    with session_scope(db) as s:
        assert [w.executor_id for w in live_workers(s, timeout_s=30)] == ["me", "other"]


def test_a_second_reaper_does_not_recover_what_the_first_claimed(db):
    first, second = [], []
    a, b = _heartbeat(db, "a", first), _heartbeat(db, "b", second)
    _heartbeat(db, "dead", []).start()
    _age(db, "dead", 60)
    dead_seen_by_b, cutoff = b.dead_executors()
    assert dead_seen_by_b == ["dead"]
    assert a.reap() == ["dead"]
    with session_scope(db) as s:  # b's claim fails: the row is gone
        assert not crud.forget_executor(s, executor_id="dead", seen_before=cutoff)
    assert b.reap() == [] and second == []


def test_an_executor_that_beats_again_is_not_taken_for_dead(db):
    recovered: list[str] = []
    me = _heartbeat(db, "me", recovered)
    back = _heartbeat(db, "back", [])
    back.start()
    _age(db, "back", 60)
    back.beat()  # it came back before anyone reaped it
    assert me.reap() == [] and recovered == []


def test_a_stopped_executor_is_recovered_at_once_and_not_listed(db):
    recovered: list[str] = []
    me = _heartbeat(db, "me", recovered)
    gone = _heartbeat(db, "gone", [])
    me.start()
    gone.start()
    gone.stop()  # a clean shutdown leaves its unfinished workflows pending
    with session_scope(db) as s:
        assert [w.executor_id for w in live_workers(s, timeout_s=30)] == ["me"]
    assert me.reap() == ["gone"] and recovered == ["gone"]


def test_pending_work_of_an_executor_without_a_row_is_recovered(db):
    recovered: list[str] = []
    me = _heartbeat(db, "me", recovered, owners={"me", "ghost"})
    me.start()
    assert me.reap() == ["ghost"] and recovered == ["ghost"]


def test_an_executor_counts_its_live_peers_so_its_claims_leave_chunks_to_them(db, monkeypatch):
    """Alone, an executor claims every chunk it can at once; with a live peer, one at a time (the
    peers' pollers take the others, so a run's chunks spread over the workers)."""
    from app.execution import workflows

    a, b = _heartbeat(db, "a", []), _heartbeat(db, "b", [])
    a.start()
    assert a.live_peers == 0
    b.start()
    assert b.live_peers == 1
    a.dead_executors()
    assert a.live_peers == 1
    _age(db, "b", 60)  # b's heartbeat went stale: dead, not a peer
    a.dead_executors()
    assert a.live_peers == 0

    class Rt:
        heartbeat = a
    monkeypatch.setattr(workflows, "runtime", lambda: Rt)
    assert workflows._claim_budget() == sys.maxsize
    a.live_peers = 2
    assert workflows._claim_budget() == 1


def test_sqlite_allows_one_executor(tmp_path):
    first = SqliteExecutorLock(tmp_path / "a.db", "local")
    first.acquire()
    second = SqliteExecutorLock(tmp_path / "a.db", "w2")
    with pytest.raises(ExecutorRefused, match="executor 'local'.*SQLite allows one executor"):
        second.acquire()
    first.release()
    second.acquire()  # the lock goes with its holder
    second.release()


@pytest.mark.slow  # a service start-up
def test_a_second_executor_on_one_sqlite_database_is_refused_with_a_message(fresh_sqlite_url, tmp_path):
    with serving(fresh_sqlite_url, free_port(), tmp_path / "serve.log"):
        worker = subprocess.run([sys.executable, "-m", "app.cli", "worker", "--database-url", fresh_sqlite_url,
                                 "--executor-id", "w2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert worker.returncode == 2
        assert "error: refused: executor 'local'" in worker.stderr and "PostgreSQL" in worker.stderr
        assert "Traceback" not in worker.stderr
        serve2 = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", str(free_port()),
                                 "--database-url", fresh_sqlite_url], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)
        assert serve2.returncode == 2 and "SQLite allows one executor" in serve2.stderr
