"""Durability: ``ctxeval serve`` killed with SIGKILL in the middle of a run, then started again,
finishes the run with exactly one stored result per case."""

from __future__ import annotations

import signal
import time

import httpx
import pytest
from sqlmodel import func, select

from app.db import make_engine, session_scope
from app.models import CaseRecord
from tests.app.execution.conftest import CHAT
from tests.app.execution.processes import free_port, serving
from tests.app.factories import endpoint_body, suite_body
from tests.fakes.openai_server import FakeConfig, run_in_thread


def _wait(client: httpx.Client, run_id: int, cond, timeout_s: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}").json()
        if cond(run):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} stuck: {run}")


@pytest.mark.slow  # two service start-ups (~10 s each on a small machine)
def test_sigkill_mid_run_and_restart_complete_the_run_once(fresh_sqlite_url, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    engine = make_engine(fresh_sqlite_url)
    with run_in_thread(FakeConfig(first_token_latency_s=0.3)) as fake:
        with serving(fresh_sqlite_url, port, log) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            eid = c.post("/api/endpoints", json=endpoint_body(base_url=fake.base_url, concurrency=2)).json()["id"]
            sid = c.post("/api/suites", json=suite_body(n_questions=6)).json()["id"]
            run = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                            "strategies": [{"name": "no_context"}, {"name": "long_context"}]}).json()
            _wait(c, run["id"], lambda r: r["progress"]["done"] >= 3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        with session_scope(engine) as s:
            before = s.exec(select(func.count()).select_from(CaseRecord)).one()
        assert 3 <= before < 12
        with serving(fresh_sqlite_url, port, log), httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            done = _wait(c, run["id"], lambda r: r["status"] not in ("queued", "running"))
        asked = fake.stats()["by_path"][CHAT]
    assert done["status"] == "completed" and done["progress"]["done"] == 12
    with session_scope(engine) as s:
        ids = s.exec(select(CaseRecord.case_id).where(CaseRecord.run_id == run["id"])).all()
    engine.dispose()
    assert len(ids) == len(set(ids)) == 12
    assert 12 <= asked <= 12 + 2  # only the cases in flight at the kill (concurrency 2) were asked again
