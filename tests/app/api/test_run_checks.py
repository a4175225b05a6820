"""CI checks through the API: validated when a run is created, judged when it ends."""

from __future__ import annotations

import pytest

from app.db import make_engine, session_scope
from app.models import RunRecord
from tests.app.factories import endpoint_body, suite_body
from tests.app.helpers import case_result, store, stored_run

LC = [1.0, 1.0, 0.0, 1.0]
RAG = [1.0, 0.0, 0.0, 1.0]


@pytest.fixture
def ids(client):
    e1 = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    sid = client.post("/api/suites", json=suite_body(n_questions=3)).json()["id"]
    return {"e1": e1, "suite": sid}


def body(ids, **kw):
    base = {"suite_id": ids["suite"], "endpoint_ids": [ids["e1"]],
            "strategies": [{"name": "long_context"}, {"name": "rag", "params": {"k": 2}}], "scorers": ["f1"]}
    base.update(kw)
    return base


def test_checks_are_stored_in_canonical_form(client, ids):
    r = client.post("/api/runs", json=body(ids, checks=[" rag[k=2] : f1.lower >= 0.5",
                                                         "rag[k=2]-vs-long_context:f1>=-0.02"]))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["checks"] == ["rag[k=2]:f1.lower>=0.5", "rag[k=2]-vs-long_context:f1>=-0.02"]
    assert run["check_results"] is None and run["checks_passed"] is None  # still queued
    rerun = client.post(f"/api/runs/{run['id']}/rerun").json()
    assert rerun["checks"] == run["checks"]


@pytest.mark.parametrize(("checks", "extra", "status", "field", "fragment"), [
    (["rag:f1>=0.5"], {}, 422, "checks[0]", "no strategy 'rag' in this run"),
    (["long_context:em>=0.5"], {}, 422, "checks[0]", "no scorer 'em'"),
    (["long_context:f1>=0.5", "long_context:f1"], {}, 422, "checks[1]", "no comparison"),
    (["long_context-vs-baseline:f1>=0"], {}, 422, "checks[0]", "no baseline was given"),
    (["long_context-vs-baseline:f1>=0"], {"baseline_run_id": 999}, 404, "baseline_run_id", "not found"),
])
def test_bad_checks_are_refused_before_anything_runs(client, ids, checks, extra, status, field, fragment):
    r = client.post("/api/runs", json=body(ids, checks=checks, **extra))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field and fragment in error["message"]
    assert client.get("/api/runs").json()["count"] == 0


def _stored(settings, *, checks, status="completed", baseline_scores=None, baseline_status="completed"):
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        baseline_id = None
        if baseline_scores is not None:
            base = stored_run(s, n_questions=4, scorers=("f1",), status=baseline_status)
            store(s, base, [case_result(f"q{i}", "rag", scores={"f1": v}) for i, v in enumerate(baseline_scores)])
            baseline_id = base.id
        run = stored_run(s, n_questions=4, scorers=("f1",), status=status)
        results = [case_result(f"q{i}", "long_context", scores={"f1": LC[i]}) for i in range(4)]
        results += [case_result(f"q{i}", "rag", scores={"f1": RAG[i]}) for i in range(4)]
        store(s, run, results)
        record = s.get(RunRecord, run.id)
        record.checks, record.baseline_run_id = checks, baseline_id
        s.add(record)
        s.commit()
        rid = run.id
    engine.dispose()
    return rid


def test_a_finished_run_reports_each_check(client, settings):
    rid = _stored(settings, checks=["rag:f1>=0.5", "rag:f1>=0.75", "rag-vs-long_context:f1>=-0.5",
                                    "rag-vs-baseline:f1>=0"], baseline_scores=[1.0, 1.0, 0.0, 1.0])
    run = client.get(f"/api/runs/{rid}").json()
    results = run["check_results"]
    assert [(c["check"], c["status"]) for c in results] == [
        ("rag:f1>=0.5", "passed"), ("rag:f1>=0.75", "failed"), ("rag-vs-long_context:f1>=-0.5", "passed"),
        ("rag-vs-baseline:f1>=0", "failed")]
    assert results[0]["observed"] == pytest.approx(0.5) and results[0]["n"] == 4
    assert results[2]["observed"] == pytest.approx(-0.25) and results[2]["kind"] == "difference"
    assert results[3]["observed"] == pytest.approx(-0.25) and results[3]["kind"] == "baseline"
    assert "not ≥ 0.75" in results[1]["message"]
    assert run["checks_passed"] is False
    # the list shows the checks but does not judge them (that reads every case of every run)
    listed = client.get("/api/runs").json()["data"]
    assert next(r for r in listed if r["id"] == rid)["check_results"] is None


def test_all_checks_pass_on_a_completed_run(client, settings):
    rid = _stored(settings, checks=["rag:f1>=0.5"])
    run = client.get(f"/api/runs/{rid}").json()
    assert run["checks_passed"] is True and run["check_results"][0]["status"] == "passed"


def test_a_failed_run_fails_its_gate_even_when_checks_pass(client, settings):
    rid = _stored(settings, checks=["rag:f1>=0.5"], status="failed")
    run = client.get(f"/api/runs/{rid}").json()
    assert run["check_results"][0]["status"] == "passed" and run["checks_passed"] is False
