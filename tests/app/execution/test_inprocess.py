"""Runs created over the API execute in the background of the service process (DBOS, in-process)."""

from __future__ import annotations

import csv
import io
import json

from tests.app.execution.conftest import CHAT, finished, start_run, wait_for
from tests.app.factories import endpoint_body, suite_body
from tests.fakes.openai_server import FakeConfig, run_in_thread

SECRET = endpoint_body()["api_key"]


def stored_views(client, run_id: int) -> int:
    from sqlmodel import Session, col, select

    from app.models import RunViewRecord

    with Session(client.app.state.db) as s:
        return len(s.execute(select(RunViewRecord.key).where(col(RunViewRecord.run_id) == run_id)).all())


def wait_until(check, timeout_s: float = 15.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_run_completes_in_the_background_and_its_results_are_readable(executing_client):
    c = executing_client
    with run_in_thread(FakeConfig(first_token_latency_s=0.02, api_key=SECRET)) as fake:  # the key is used
        run = start_run(c, fake, questions=4, concurrency=2)
        assert run["status"] == "queued" and run["total_cases"] == 8
        assert run["progress"]["done"] == 0
        done = wait_for(c, run["id"], finished)
        stats = fake.stats()
    assert done["status"] == "completed", done
    assert done["progress"]["done"] == 8 and done["progress"]["outcomes"] == {"ok": 4, "declined": 4}  # no_context has no context
    assert done["progress"]["prompt_tokens"] > 0 and done["progress"]["cost_usd"] > 0
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    assert stats["by_path"][CHAT] == 8  # each case asked once
    assert SECRET not in json.dumps(done)  # the spec holds no key
    assert stats["max_in_flight"] <= 2  # the endpoint's concurrency
    cases = c.get(f"/api/runs/{run['id']}/cases", params={"limit": 100}).json()
    assert cases["count"] == 8 and len({x["case_id"] for x in cases["data"]}) == 8
    assert [x["position"] for x in cases["data"]] == list(range(8))
    lc = [x for x in cases["data"] if x["strategy"] == "long_context"]
    assert all(x["scores"]["exact_match"] == 1.0 for x in lc)  # the fake model reads the context
    summary = c.get(f"/api/runs/{run['id']}/summary").json()
    assert {g["strategy"] for g in summary["groups"]} == {"no_context", "long_context"}
    assert wait_until(lambda: stored_views(c, run["id"]) == 4)  # progress, headline, summary and report data
    rows = list(csv.DictReader(io.StringIO(c.get(f"/api/runs/{run['id']}/export").text)))
    assert len(rows) == 8 and {r["outcome"] for r in rows} == {"ok", "declined"}
    lines = c.get(f"/api/runs/{run['id']}/export", params={"format": "jsonl"}).text.splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["prompt"]


def test_cancel_stops_the_run_and_resume_executes_only_what_is_missing(executing_client, slow_fake):
    c = executing_client
    run = start_run(c, slow_fake, questions=4, concurrency=1)
    rid = run["id"]
    wait_for(c, rid, lambda r: r["progress"]["done"] >= 2)
    r = c.post(f"/api/runs/{rid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert c.post(f"/api/runs/{rid}/cancel").status_code == 409
    import time

    time.sleep(1.0)  # queued cases never start; the one in flight is abandoned
    stopped = c.get(f"/api/runs/{rid}").json()
    asked = slow_fake.stats()["by_path"][CHAT]
    time.sleep(0.6)
    assert slow_fake.stats()["by_path"][CHAT] == asked
    assert c.get(f"/api/runs/{rid}").json()["progress"]["done"] == stopped["progress"]["done"] < 8
    assert stopped["status"] == "cancelled"

    resumed = c.post(f"/api/runs/{rid}/resume")
    assert resumed.status_code == 200 and resumed.json()["attempt"] == 2
    done = wait_for(c, rid, finished)
    assert done["status"] == "completed" and done["progress"]["done"] == 8
    cases = c.get(f"/api/runs/{rid}/cases", params={"limit": 100}).json()["data"]
    assert len({x["case_id"] for x in cases}) == 8
    # stored cases were not asked again; only a case abandoned in flight may be asked twice
    assert 8 <= slow_fake.stats()["by_path"][CHAT] <= 9
    assert c.post(f"/api/runs/{rid}/resume").status_code == 409


def test_rerun_is_a_new_run_answered_from_the_cache(executing_client):
    c = executing_client
    with run_in_thread(FakeConfig()) as fake:
        run = start_run(c, fake, questions=3)
        wait_for(c, run["id"], finished)
        before = fake.stats()["by_path"][CHAT]
        again = c.post(f"/api/runs/{run['id']}/rerun")
        assert again.status_code == 201
        new = again.json()
        assert new["id"] != run["id"] and new["rerun_of"] == run["id"] and new["spec_hash"] == run["spec_hash"]
        done = wait_for(c, new["id"], finished)
        assert done["status"] == "completed" and done["progress"]["done"] == 6
        assert fake.stats()["by_path"][CHAT] == before  # nothing asked again
    cases = c.get(f"/api/runs/{new['id']}/cases").json()["data"]
    assert all(x["from_cache"] for x in cases)


def test_deleting_a_running_run_stops_it(executing_client, slow_fake):
    c = executing_client
    run = start_run(c, slow_fake, questions=4, concurrency=1)
    wait_for(c, run["id"], lambda r: r["progress"]["done"] >= 1)
    assert c.delete(f"/api/runs/{run['id']}").status_code == 204
    assert c.get(f"/api/runs/{run['id']}").status_code == 404
    suite_id = run["suite_id"]
    assert c.delete(f"/api/suites/{suite_id}").status_code == 204  # no run uses it any more


def test_suite_and_endpoint_in_use_cannot_be_deleted(executing_client, slow_fake):
    c = executing_client
    run = start_run(c, slow_fake, questions=2, concurrency=1)
    r = c.delete(f"/api/suites/{run['suite_id']}")
    assert r.status_code == 409 and "run" in r.json()["error"]["message"]
    eid = c.get("/api/endpoints").json()["data"][0]["id"]
    assert c.delete(f"/api/endpoints/{eid}").status_code == 409
    c.post(f"/api/runs/{run['id']}/cancel")
    assert c.delete(f"/api/endpoints/{eid}").status_code == 204
    assert c.delete(f"/api/suites/{run['suite_id']}").status_code == 409  # the cancelled run still uses it


def test_a_spec_the_engine_refuses_fails_the_run_with_the_reason(executing_client, settings):
    from app import crud
    from app.db import make_engine, session_scope
    from app.models import RunRecord
    from evals.domain import RunSpec

    c = executing_client
    with run_in_thread(FakeConfig()) as fake:
        run = start_run(c, fake, questions=2)
        wait_for(c, run["id"], finished)
        spec = RunSpec.model_validate({**run["spec"], "strategies": [{"name": "no_such_strategy"}]})
        engine = make_engine(settings.database_url)
        with session_scope(engine) as s:  # as if stored by an older version that knew the strategy
            bad = crud.create_run(s, run=RunRecord(suite_id=run["suite_id"], spec=spec.model_dump(mode="json"),
                                                   spec_hash=spec.spec_hash, total_cases=2))
        engine.dispose()
        c.app.state.dispatcher.start_run(bad.id, 1, {"fake": 2})
        failed = wait_for(c, bad.id, finished)
    assert failed["status"] == "failed" and "no_such_strategy" in failed["error"]
    assert failed["progress"]["done"] == 0


def test_dense_retrieval_embeds_through_the_stored_endpoint_with_its_key(executing_client):
    c = executing_client
    with run_in_thread(FakeConfig(api_key=SECRET)) as fake:
        eid = c.post("/api/endpoints", json=endpoint_body(base_url=fake.base_url, embedding_model="fake-embed")
                     ).json()["id"]
        sid = c.post("/api/suites", json=suite_body(n_questions=3)).json()["id"]
        run = c.post("/api/runs", json={
            "suite_id": sid, "endpoint_ids": [eid], "strategies": [{"name": "rag", "params": {"retriever": "dense"}}],
            "embeddings": {"source": "endpoint", "endpoint_id": eid}}).json()
        done = wait_for(c, run["id"], finished)
        stats = fake.stats()
    assert done["status"] == "completed" and done["progress"]["outcomes"] == {"ok": 3}, done
    assert stats["by_path"]["/v1/embeddings"] >= 1 and stats["by_path"][CHAT] == 3


# ------------------------------------------------------------------------------------ run status
def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_run_on_a_down_endpoint_is_failed_with_the_reason(executing_client):
    c = executing_client
    url = _closed_port_url()
    eid = c.post("/api/endpoints", json=endpoint_body(name="down", base_url=url, max_retries=0)).json()["id"]
    sid = c.post("/api/suites", json=suite_body(n_questions=3)).json()["id"]
    run = c.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                    "strategies": [{"name": "long_context"}]}).json()
    done = wait_for(c, run["id"], finished)
    assert done["status"] == "failed", done
    assert "no case got an answer" in done["error"] and url in done["error"]
    assert "connection" in done["error"]
    assert c.get("/api/runs", params={"status": "failed"}).json()["count"] >= 1
    summary = c.get(f"/api/runs/{run['id']}/summary").json()
    assert summary["health"]["status"] == "failed"
    assert summary["recommendation"]["sentence"].startswith("No recommendation")
    page = c.get(f"/runs/{run['id']}").text
    assert "failed" in page and url in page


def test_some_errored_cases_complete_with_errors_and_resume_runs_them_again(executing_client):
    c = executing_client
    with run_in_thread(FakeConfig(faults=[{"status": 400}])) as fake:  # the first request is refused
        run = start_run(c, fake, questions=3, concurrency=1, strategies=("long_context",))
        done = wait_for(c, run["id"], finished)
        assert done["status"] == "completed_with_errors", done
        assert "1 of 3 cases (33%) errored" in done["error"] and fake.base_url.removesuffix("/v1") in done["error"]
        listing = c.get("/runs").text
        assert "completed with errors" in listing and "1 of 3 cases" in listing
        resumed = c.post(f"/api/runs/{run['id']}/resume")
        assert resumed.status_code == 200, resumed.text
        again = wait_for(c, run["id"], finished)
    assert again["status"] == "completed" and again["error"] is None
    assert again["progress"]["outcomes"] == {"ok": 3}


def test_a_service_executing_in_process_starts_its_runs_itself_not_through_the_runs_queue(executing_client):
    """The run's workflow is started on the API process's own executor (no wait for the runs queue's next
    poll): its DBOS status names no queue, and it completes like a queued one."""
    from dbos import DBOS

    from app.execution.dispatch import run_workflow_id

    c = executing_client
    with run_in_thread(FakeConfig(api_key=SECRET)) as fake:
        run = start_run(c, fake, questions=2, concurrency=2)
        done = wait_for(c, run["id"], finished)
    assert done["status"] == "completed", done
    status = DBOS.get_workflow_status(run_workflow_id(run["id"], 1))
    assert status is not None and status.queue_name is None


def test_the_dispatcher_queues_a_run_its_process_cannot_start():
    """``start_here`` failing (no executor loop, say) leaves the run on the runs queue for an executor."""
    from app.execution.dispatch import RUNS_QUEUE, Dispatcher

    enqueued: list[tuple[dict, tuple]] = []

    class Client:
        def register_queue(self, *a, **k):
            pass

        def enqueue(self, options, *args):
            enqueued.append((options, args))

            class Handle:
                def get_workflow_id(self):
                    return options["workflow_id"]
            return Handle()

    def refuse(run_id, attempt):
        raise RuntimeError("the executor's event loop is not running")

    d = Dispatcher("sqlite:///unused.sqlite", start_here=refuse)
    d._client = Client()
    assert d.start_run(7, 2, {}) == "ctxeval-run-7-a2"
    assert enqueued and enqueued[0][0]["queue_name"] == RUNS_QUEUE and enqueued[0][1] == (7, 2)


def test_a_runs_chunks_start_without_waiting_for_the_chunk_queues_poll(database_url, monkeypatch):
    """The run workflow claims its chunks itself right after enqueueing them: with the chunk queue
    polled only every 60 s, a run still completes within seconds (it would wait a minute without)."""
    from dbos import DBOS
    from fastapi.testclient import TestClient

    from app.execution import dispatch
    from app.execution.dispatch import run_workflow_id
    from app.main import create_app
    from app.settings import Settings

    monkeypatch.setattr(dispatch, "CHUNKS_QUEUE_POLLING_S", 60.0)
    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=60.0)
    with TestClient(create_app(settings)) as c, run_in_thread(FakeConfig(api_key=SECRET)) as fake:
        run = start_run(c, fake, questions=3, concurrency=2)
        done = wait_for(c, run["id"], finished, timeout_s=30)  # half the poll: only the claims start chunks
        steps = DBOS.list_workflow_steps(run_workflow_id(run["id"], 1))
    assert done["status"] == "completed" and done["progress"]["done"] == 6, done
    # the claims are no operations of the run's workflow: its recorded steps are numbered without gaps,
    # so replaying it elsewhere (recovery claims other numbers of chunks) meets them in the same order
    assert len(steps) >= 4 and [s["function_id"] for s in steps] == list(range(1, len(steps) + 1)), steps


def test_a_service_stopped_right_after_its_run_completed_lets_the_run_workflow_finish(database_url):
    """The last chunk completes the run; the run's workflow still waits for its chunks and stores the
    run's views. A service stopped at that moment lets it end instead of shutting DBOS down under it
    (which logged the workflow as failed), and the workflow is recorded as a success."""
    import logging

    from dbos import DBOSClient
    from fastapi.testclient import TestClient

    from app.execution.dispatch import run_workflow_id
    from app.main import create_app
    from app.settings import Settings

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.ERROR)
    logging.getLogger("dbos").addHandler(handler)
    try:
        settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.5)
        with run_in_thread(FakeConfig(api_key=SECRET)) as fake:
            with TestClient(create_app(settings)) as c:
                run = start_run(c, fake, questions=3, concurrency=2)
                done = wait_for(c, run["id"], finished, timeout_s=30)
            client = DBOSClient(system_database_url=settings.dbos_system_database_url)
            try:
                status = client.retrieve_workflow(run_workflow_id(run["id"], 1)).get_status().status
            finally:
                client.destroy()
    finally:
        logging.getLogger("dbos").removeHandler(handler)
    assert done["status"] == "completed", done
    assert [r.getMessage() for r in records] == []
    assert status == "SUCCESS"  # recorded by the service before it stopped


def test_an_executing_process_keeps_its_startup_heap_out_of_the_collector_until_it_stops(database_url):
    """While the executor runs, the heap it started with is frozen (``gc.freeze``) and the youngest
    generation is collected less often; stopping the executor gives both back."""
    import gc

    from fastapi.testclient import TestClient

    from app.execution import heap
    from app.main import create_app
    from app.settings import Settings

    before = gc.get_threshold()
    assert not heap.tuned()
    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.1)
    with TestClient(create_app(settings)):
        assert heap.tuned()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert not heap.tuned()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_an_executing_process_does_not_wake_dbos_notification_pusher_every_10_ms(database_url):
    """DBOS pushes LISTEN/NOTIFY wake-ups for workflow events and streams from a thread that wakes
    every 10 ms by default, taking the interpreter lock from the loop that executes the cases;
    ctxeval uses neither, so the executor configures it to wake once a second."""
    import threading

    from dbos._dbos import _get_dbos_instance
    from fastapi.testclient import TestClient

    from app.execution.workflows import NOTIFY_COALESCE_S
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.1)
    with TestClient(create_app(settings)):
        assert NOTIFY_COALESCE_S >= 1.0
        assert _get_dbos_instance()._sys_db._notification_coalesce_sec == NOTIFY_COALESCE_S
        if database_url.startswith("postgresql"):  # the pusher runs where LISTEN/NOTIFY exists
            assert any("run_notifier" in t.name for t in threading.enumerate())


def _count_dispatcher_registrations(monkeypatch) -> list[object]:
    from app.execution import dispatch

    calls: list[object] = []
    real = dispatch.register_queues

    def counting(client, **kw):
        calls.append(client)
        return real(client, **kw)

    monkeypatch.setattr(dispatch, "register_queues", counting)  # the executor's goes through workflows
    return calls


def test_a_service_that_registered_its_queues_at_launch_does_not_register_them_again_for_its_first_run(
        database_url, monkeypatch):
    """The executor registers both queues before DBOS launches; the API's client then neither connects
    nor registers them again when the first run starts (20-40 ms of that run)."""
    from fastapi.testclient import TestClient

    from app.execution import workflows
    from app.main import create_app
    from app.settings import Settings

    calls = _count_dispatcher_registrations(monkeypatch)
    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.1)
    with TestClient(create_app(settings)) as c, run_in_thread(FakeConfig(api_key=SECRET)) as fake:
        assert workflows.runtime().queues_registered
        run = start_run(c, fake, questions=2, concurrency=2)
        assert wait_for(c, run["id"], finished)["status"] == "completed"
    assert calls == []


def test_where_the_registration_at_launch_failed_the_first_run_registers_the_queues(database_url, monkeypatch):
    from fastapi.testclient import TestClient

    from app.execution import workflows
    from app.main import create_app
    from app.settings import Settings

    calls = _count_dispatcher_registrations(monkeypatch)

    def refused(_settings):
        raise RuntimeError("the system database refused the queues")

    monkeypatch.setattr(workflows, "_register_before_launch", refused)
    settings = Settings(database_url=database_url, execution="inprocess", queue_polling_interval_s=0.1)
    with TestClient(create_app(settings)) as c, run_in_thread(FakeConfig(api_key=SECRET)) as fake:
        assert not workflows.runtime().queues_registered
        run = start_run(c, fake, questions=2, concurrency=2)
        assert wait_for(c, run["id"], finished)["status"] == "completed"
    assert len(calls) == 1
