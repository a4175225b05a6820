"""Team mode: the API executes nothing (``--execution none``); two ``ctxeval worker`` processes on
PostgreSQL share one run, each case executed once, the endpoint's concurrency never exceeded."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import make_engine
from app.main import create_app
from app.services import execution
from app.settings import Settings
from tests.fakes.openai_server import FakeConfig, run_in_thread
from tests.service.execution.conftest import CHAT, finished, start_run, wait_for
from tests.service.execution.processes import working


@pytest.mark.postgres
@pytest.mark.slow  # two worker start-ups (~10 s each on a small machine)
def test_two_workers_share_a_run_on_postgres(fresh_pg_url, tmp_path):
    settings = Settings(database_url=fresh_pg_url, execution="none")
    with run_in_thread(FakeConfig(first_token_latency_s=0.15)) as fake, contextlib.ExitStack() as stack:
        for name in ("w1", "w2"):
            stack.enter_context(working(fresh_pg_url, name, tmp_path / f"{name}.log"))
        with TestClient(create_app(settings)) as c:
            assert execution._runtime is None  # this process executes nothing
            run = start_run(c, fake, questions=8, concurrency=2)
            done = wait_for(c, run["id"], finished, timeout_s=120)
            cases = c.get(f"/api/runs/{run['id']}/cases", params={"limit": 100}).json()["data"]
        stats = fake.stats()
    assert done["status"] == "completed" and done["progress"]["done"] == 16
    assert len({x["case_id"] for x in cases}) == 16
    assert not any(x["from_cache"] for x in cases)  # a case executed twice would have hit the cache
    assert stats["by_path"][CHAT] == 16  # each case asked exactly once
    assert stats["max_in_flight"] <= 2  # the endpoint's concurrency, across both processes
    engine = make_engine(fresh_pg_url)
    with engine.connect() as conn:
        by_executor = dict(conn.execute(sa.text(
            "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE name = 'ctxeval.case' "
            "GROUP BY executor_id")).all())
    engine.dispose()
    assert set(by_executor) == {"w1", "w2"} and sum(by_executor.values()) == 16
