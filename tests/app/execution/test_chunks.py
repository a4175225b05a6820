"""Chunked execution: few statements per case, the run completed by the chunk that stores its last
case, and prompts stored by reference (the same bytes per case whatever the context length)."""

from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.db import make_engine
from app.execution import workflows as execution
from app.execution.dispatch import chunk_size, queue_shape
from app.main import create_app
from app.settings import Settings
from evals import prompts
from tests.app.execution.conftest import CHAT, finished, start_run, wait_for
from tests.app.factories import endpoint_body
from tests.fakes.openai_server import FakeConfig, run_in_thread


def test_queue_shape_keeps_every_endpoint_within_its_concurrency():
    for c in range(1, 300):
        slots, lanes = queue_shape(c)
        assert slots * lanes <= c and lanes >= 1 and lanes <= 16
        assert slots * lanes >= c * 0.5  # and uses most of it
    assert queue_shape(2) == (1, 2) and queue_shape(32) == (2, 16) and queue_shape(33) == (3, 11)
    assert chunk_size(2, 1000) == 16 and chunk_size(32, 40) == 20 and chunk_size(64, 10) == 16


def _count_statements(url: str) -> tuple[dict[str, int], sa.engine.Engine, object]:
    app_db = make_engine(url)
    counts = {"app": 0, "system_writes": 0, "on": 0}

    def count(conn, cursor, statement, *_):
        if not counts["on"]:
            return
        if conn.engine is app_db:
            counts["app"] += 1
        elif statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE") and "workflow" in statement:
            counts["system_writes"] += 1  # DBOS's workflow and step records (its polling reads are per second)
    event.listen(sa.engine.Engine, "before_cursor_execute", count)
    return counts, app_db, count


def test_a_run_costs_few_statements_per_case(database_url):
    """One chunk workflow per chunk of cases and group commit: DBOS records workflows and steps per
    chunk, not per case (a workflow per case wrote about 7 records per case), and the app database gets
    fewer statements per case than the 6 of a case written on its own."""
    counts, app_db, listener = _count_statements(database_url)
    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.1)
    try:
        with run_in_thread(FakeConfig()) as fake, TestClient(create_app(settings, db=app_db)) as c:
            eid = c.post("/api/endpoints", json=endpoint_body(base_url=fake.base_url, concurrency=16)).json()["id"]
            from bench.data import short_suite

            suite = short_suite(120, salt=" statements")
            sid = c.post("/api/suites", json=suite.model_dump(mode="json")).json()["id"]
            counts["on"] = 1
            run = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                            "strategies": [{"name": "long_context"}]}).json()
            watcher = make_engine(database_url)
            try:
                with watcher.connect() as conn:
                    while conn.execute(sa.text("SELECT status FROM run WHERE id = :i"), {"i": run["id"]}
                                       ).scalar() in ("queued", "running"):
                        conn.commit()
                        asyncio.run(asyncio.sleep(0.05))
            finally:
                watcher.dispose()
            counts["on"] = 0
            counts["app"] += getattr(execution.runtime().writer, "statements", 0)  # the writer process's
            done = c.get(f"/api/runs/{run['id']}").json()
            asked = fake.stats()["by_path"][CHAT]
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", listener)
        app_db.dispose()
    assert done["status"] == "completed" and done["progress"]["done"] == 120 and asked == 120
    assert counts["system_writes"] / 120 < 0.5, counts
    assert counts["app"] / 120 < 5.0, counts


def test_the_chunk_that_stores_the_last_case_completes_the_run(executing_client, monkeypatch):
    """Even while the run's own workflow is still waiting (or its process is gone), the run says
    completed once its last case is stored."""
    real = execution._wait
    stuck = asyncio.Event()

    async def never_after_the_leaders(handle, polling_s):
        if polling_s < 0.5:  # leaders: followers still start
            return await real(handle, polling_s)
        await stuck.wait()
    monkeypatch.setattr(execution, "_wait", never_after_the_leaders)
    with run_in_thread(FakeConfig()) as fake:
        run = start_run(executing_client, fake, questions=5, concurrency=2)
        done = wait_for(executing_client, run["id"], finished)
    assert done["status"] == "completed" and done["progress"]["done"] == 10 and done["finished_at"]


def _detail_chars(url: str, run_id: int) -> list[int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [len(json.dumps(p if not isinstance(p, str) else json.loads(p))) for p in conn.execute(sa.text(
                "SELECT d.prompt FROM case_detail d JOIN \"case\" c ON c.id = d.case_pk "
                "WHERE c.run_id = :r AND c.strategy = 'long_context'"), {"r": run_id}).scalars()]
    finally:
        engine.dispose()


def _blobs(url: str, run_id: int) -> list[int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT length(text) FROM prompt_blob WHERE run_id = :r"),
                                     {"r": run_id}).scalars())
    finally:
        engine.dispose()


def _long_suite(doc_chars: int, name: str) -> dict:
    filler = ("The grass is green and the sky is blue. " * (doc_chars // 40 + 1))[:doc_chars]
    docs = [{"id": f"d{i}", "text": filler + f" The magic number of city{i} is: {1000 + i}."} for i in range(3)]
    questions = [{"id": f"q{i}", "question": f"What is the magic number of city{i}?", "answers": [str(1000 + i)]}
                 for i in range(4)]
    return {"name": name, "documents": docs, "questions": questions, "default_scorers": ["exact_match"]}


def test_a_long_prompt_is_stored_once_per_run_and_shown_exactly(executing_client, database_url):
    c = executing_client
    sizes, blobs = {}, {}
    with run_in_thread(FakeConfig(max_model_len=2_000_000)) as fake:
        eid = c.post("/api/endpoints", json=endpoint_body(base_url=fake.base_url, concurrency=2)).json()["id"]
        for label, chars in (("short", 5_000), ("long", 400_000)):
            suite = _long_suite(chars, label)
            sid = c.post("/api/suites", json=suite).json()["id"]
            run = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                            "strategies": [{"name": "long_context"}]}).json()
            done = wait_for(c, run["id"], finished)
            assert done["status"] == "completed", done
            sizes[label] = _detail_chars(database_url, run["id"])
            blobs[label] = _blobs(database_url, run["id"])
            first = c.get(f"/api/runs/{run['id']}/cases").json()["data"][0]["case_id"]
            case = c.get(f"/api/runs/{run['id']}/cases/{first}").json()
            from evals.domain import Document

            block = prompts.render_documents([Document.model_validate(d) for d in suite["documents"]])
            assert case["prompt"][-1]["content"] == prompts.long_context_user(block, case_question(suite, case))
            lines = c.get(f"/api/runs/{run['id']}/export", params={"format": "jsonl"}).text.splitlines()
            assert all(block in json.loads(line)["prompt"][-1]["content"] for line in lines)
    assert len(blobs["short"]) == len(blobs["long"]) == 1  # the documents, once per run
    assert blobs["long"][0] > 1_200_000 and blobs["short"][0] < 20_000
    # a case's own bytes do not grow with the context: the same at 15k and 1.2M characters
    assert max(sizes["long"]) - min(sizes["short"]) <= 4 and max(sizes["long"]) < 1200


def case_question(suite: dict, case: dict) -> str:
    return next(q["question"] for q in suite["questions"] if q["id"] == case["question_id"])
