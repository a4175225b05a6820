"""Team mode: the API executes nothing (``--execution none``); ``ctxeval worker`` processes on
PostgreSQL share runs chunk by chunk, each case executed once, the endpoint's concurrency never
exceeded; a worker killed with SIGKILL has its chunks finished by the others once its heartbeat is
stale, with nothing lost or duplicated, and its slots freed."""

from __future__ import annotations

import contextlib
import signal
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import make_engine
from app.execution import workflows as execution
from app.main import create_app
from app.settings import Settings
from tests.app.execution.conftest import CHAT, finished, start_run, wait_for
from tests.app.execution.processes import stop, working
from tests.app.factories import suite_body
from tests.fakes.openai_server import FakeConfig, run_in_thread

FAST_BEATS = {"CTXEVAL_HEARTBEAT_INTERVAL_S": "0.5", "CTXEVAL_WORKER_TIMEOUT_S": "3",
              "CTXEVAL_QUEUE_POLLING_INTERVAL_S": "0.1"}


def _chunks_by_executor(url: str, status: str | None = None) -> dict[str, int]:
    engine = make_engine(url)
    where = "AND status = :status" if status else ""
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE name = 'ctxeval.chunk' "
                f"{where} GROUP BY executor_id"), {"status": status}).all())
    finally:
        engine.dispose()


def _case_rows(url: str, run_id: int) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT case_id FROM \"case\" WHERE run_id = :r"), {"r": run_id}).scalars())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow  # two worker start-ups (~10 s each on a small machine)
def test_two_workers_share_a_run_on_postgres(fresh_pg_url, tmp_path):
    settings = Settings(database_url=fresh_pg_url, execution="none")
    with run_in_thread(FakeConfig(first_token_latency_s=0.05)) as fake, contextlib.ExitStack() as stack:
        w1 = stack.enter_context(working(fresh_pg_url, "w1", tmp_path / "w1.log", env=FAST_BEATS))
        stack.enter_context(working(fresh_pg_url, "w2", tmp_path / "w2.log", env=FAST_BEATS))
        with TestClient(create_app(settings)) as c:
            assert execution._runtime is None  # this process executes nothing
            assert {w["executor_id"] for w in c.get("/api/health").json()["workers"]} == {"w1", "w2"}
            run = start_run(c, fake, questions=20, concurrency=2)  # 40 cases: 5 chunks
            done = wait_for(c, run["id"], finished, timeout_s=120)
            cases = c.get(f"/api/runs/{run['id']}/cases", params={"limit": 100}).json()["data"]
            stats = fake.stats()
            first = _chunks_by_executor(fresh_pg_url)
            # which worker dequeues a chunk is up to their polling; that each can is shown by stopping w1:
            # the next run on the same endpoint is executed by w2 alone
            stop(w1)
            eid = c.get("/api/endpoints").json()["data"][0]["id"]
            sid = c.post("/api/suites", json=suite_body(name="again", n_questions=4, salt=" again")).json()["id"]
            second = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                               "strategies": [{"name": "no_context"}, {"name": "long_context"}]})
            assert second.status_code == 201, second.text
            assert wait_for(c, second.json()["id"], finished, timeout_s=120)["status"] == "completed"
            assert [w["executor_id"] for w in c.get("/api/health").json()["workers"]] == ["w2"]
    assert done["status"] == "completed" and done["progress"]["done"] == 40
    assert len({x["case_id"] for x in cases}) == 40
    assert not any(x["from_cache"] for x in cases)  # a case executed twice would have hit the cache
    assert stats["by_path"][CHAT] == 40  # each case asked exactly once
    assert stats["max_in_flight"] <= 2  # the endpoint's concurrency, across both processes
    assert set(first) <= {"w1", "w2"} and sum(first.values()) == 5
    after = _chunks_by_executor(fresh_pg_url)
    assert after.get("w1", 0) == first.get("w1", 0) and after["w2"] > first.get("w2", 0)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_sigkilled_workers_cases_finish_on_another_worker(fresh_pg_url, tmp_path):
    settings = Settings(database_url=fresh_pg_url, execution="none", worker_timeout_s=3)
    with run_in_thread(FakeConfig(first_token_latency_s=0.3)) as fake, contextlib.ExitStack() as stack:
        procs = {w: stack.enter_context(working(fresh_pg_url, w, tmp_path / f"{w}.log", env=FAST_BEATS))
                 for w in ("w1", "w2")}
        with TestClient(create_app(settings)) as c:
            run = start_run(c, fake, questions=20, concurrency=4)  # 40 cases, one slot of 4 lanes
            rid = run["id"]
            deadline = time.monotonic() + 60
            while not (busy := _chunks_by_executor(fresh_pg_url, "PENDING")) or not len(_case_rows(fresh_pg_url, rid)):
                assert time.monotonic() < deadline, "no chunk started"
                time.sleep(0.05)
            victim = next(iter(busy))
            survivor = ({"w1", "w2"} - {victim}).pop()
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            stored_at_kill = len(_case_rows(fresh_pg_url, rid))
            assert stored_at_kill < 40
            done = wait_for(c, rid, finished, timeout_s=60)  # the bound the issue sets
            asked = fake.stats()["by_path"][CHAT]
            workers = [w["executor_id"] for w in c.get("/api/health").json()["workers"]]
            # the dead worker's slot is free: another run on the endpoint completes too
            eid = c.get("/api/endpoints").json()["data"][0]["id"]
            sid = c.post("/api/suites", json=suite_body(name="after", n_questions=2, salt=" after")).json()["id"]
            again = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                              "strategies": [{"name": "long_context"}]}).json()
            assert wait_for(c, again["id"], finished, timeout_s=60)["status"] == "completed"
        stats = fake.stats()
    assert done["status"] == "completed" and done["progress"]["done"] == 40, done
    ids = _case_rows(fresh_pg_url, rid)
    assert len(ids) == len(set(ids)) == 40  # nothing lost, nothing duplicated
    assert 40 <= asked <= 40 + 4  # only what the 4 lanes had in flight at the kill was asked again
    assert stats["by_path"][CHAT] == asked + 2  # the second run, on the slot the dead worker held
    assert stats["max_in_flight"] <= 4
    assert workers == [survivor]
    assert f"executor {victim} is gone" in (tmp_path / f"{survivor}.log").read_text()  # the survivor recovered it
