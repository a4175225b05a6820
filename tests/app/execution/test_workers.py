"""Team mode: the API executes nothing (``--execution none``); two ``ctxeval worker`` processes on
PostgreSQL share one run, each case executed once, the endpoint's concurrency never exceeded; with one
worker stopped, the other executes the next run alone."""

from __future__ import annotations

import contextlib

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


def _cases_by_executor(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE name = 'ctxeval.case' "
                "GROUP BY executor_id")).all())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow  # two worker start-ups (~10 s each on a small machine)
def test_two_workers_share_a_run_on_postgres(fresh_pg_url, tmp_path):
    settings = Settings(database_url=fresh_pg_url, execution="none")
    with run_in_thread(FakeConfig(first_token_latency_s=0.15)) as fake, contextlib.ExitStack() as stack:
        w1 = stack.enter_context(working(fresh_pg_url, "w1", tmp_path / "w1.log"))
        stack.enter_context(working(fresh_pg_url, "w2", tmp_path / "w2.log"))
        with TestClient(create_app(settings)) as c:
            assert execution._runtime is None  # this process executes nothing
            run = start_run(c, fake, questions=8, concurrency=2)
            done = wait_for(c, run["id"], finished, timeout_s=120)
            cases = c.get(f"/api/runs/{run['id']}/cases", params={"limit": 100}).json()["data"]
            stats = fake.stats()
            first = _cases_by_executor(fresh_pg_url)
            # which worker dequeues a case is up to their polling; that each can is shown by stopping w1:
            # the next run on the same endpoint queue is executed by w2 alone
            stop(w1)
            eid = c.get("/api/endpoints").json()["data"][0]["id"]
            sid = c.post("/api/suites", json=suite_body(name="again", n_questions=4, salt=" again")).json()["id"]
            second = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                               "strategies": [{"name": "no_context"}, {"name": "long_context"}]})
            assert second.status_code == 201, second.text
            assert wait_for(c, second.json()["id"], finished, timeout_s=120)["status"] == "completed"
    assert done["status"] == "completed" and done["progress"]["done"] == 16
    assert len({x["case_id"] for x in cases}) == 16
    assert not any(x["from_cache"] for x in cases)  # a case executed twice would have hit the cache
    assert stats["by_path"][CHAT] == 16  # each case asked exactly once
    assert stats["max_in_flight"] <= 2  # the endpoint's concurrency, across both processes
    assert set(first) <= {"w1", "w2"} and sum(first.values()) == 16
    after = _cases_by_executor(fresh_pg_url)
    assert {k: after.get(k, 0) - first.get(k, 0) for k in ("w1", "w2")} == {"w1": 0, "w2": 8}
