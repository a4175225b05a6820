"""Importing a finished CLI run (``ctxeval push``): validated line by line, stored as a run whose
export is the same results file."""

from __future__ import annotations

import json

import pytest

from evals.domain import CaseResult, Endpoint, StrategySpec, Suite
from evals.runner import make_spec, plan_cases
from tests.app.factories import suite_body
from tests.app.helpers import case_result


@pytest.fixture
def pushed(client):
    suite = Suite.model_validate(suite_body(n_questions=3))
    suite_id = client.post("/api/suites", json=suite.model_dump(mode="json")).json()["id"]
    spec = make_spec(suite, [Endpoint(name="fake", base_url="http://127.0.0.1:9", model="m")],
                     [StrategySpec(name="long_context"), StrategySpec(name="no_context")], ["exact_match"])
    results = [case_result(p.question_id, p.strategy.key, scores={"exact_match": float(i % 2)}, case_id=p.case_id)
               for i, p in enumerate(plan_cases(spec, suite))]
    assert [r.case_id for r in results] == [p.case_id for p in plan_cases(spec, suite)]
    jsonl = "".join(r.model_dump_json() + "\n" for r in results)
    return {"suite_id": suite_id, "spec": spec.model_dump(mode="json"), "results": jsonl, "objects": results}


def body(pushed, **kw):
    out = {k: pushed[k] for k in ("suite_id", "spec", "results")}
    out.update(kw)
    return out


def test_import_stores_a_completed_run_whose_export_is_the_same_file(client, pushed):
    r = client.post("/api/runs/import", json=body(pushed, name="from CI", checks=["long_context:exact_match>=0.5"]))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "completed" and run["name"] == "from CI" and run["total_cases"] == 6
    assert run["progress"]["done"] == 6 and run["error"] is None
    assert run["checks"] == ["long_context:exact_match>=0.5"]
    assert run["check_results"][0]["observed"] == pytest.approx(0.0)  # long_context is every even line: 0
    assert run["checks_passed"] is False
    exported = client.get(f"/api/runs/{run['id']}/export", params={"format": "jsonl"}).text
    back = [CaseResult.model_validate_json(line) for line in exported.splitlines()]
    assert back == pushed["objects"]
    summary = client.get(f"/api/runs/{run['id']}/summary").json()
    assert {g["strategy"] for g in summary["groups"]} == {"long_context", "no_context"}


@pytest.mark.parametrize("errored, status", [(6, "failed"), (2, "completed_with_errors")])
def test_an_imported_run_with_errors_reads_as_an_executed_one_would(client, pushed, errored, status):
    from evals.domain import Outcome

    broken = [r.model_copy(update={"outcome": Outcome.error, "answer": "", "error_class": "connection_error",
                                   "error_message": "connection failed: ConnectError"})
              if i < errored else r for i, r in enumerate(pushed["objects"])]
    jsonl = "".join(r.model_dump_json() + "\n" for r in broken)
    r = client.post("/api/runs/import", json=body(pushed, results=jsonl))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == status
    assert "connection_error" in run["error"] and "http://127.0.0.1:9" in run["error"]


def test_a_partial_results_file_is_a_resumable_run(client, pushed):
    lines = pushed["results"].splitlines()
    r = client.post("/api/runs/import", json=body(pushed, results="\n".join(lines[:4]) + "\n"))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "cancelled" and "imported 4 of 6 planned cases" in run["error"]


def test_a_case_written_twice_keeps_its_last_line(client, pushed):
    last = pushed["objects"][0].model_copy(update={"answer": "second try"})
    r = client.post("/api/runs/import", json=body(pushed, results=pushed["results"] + last.model_dump_json() + "\n"))
    assert r.status_code == 201
    cases = client.get(f"/api/runs/{r.json()['id']}/export", params={"format": "jsonl"}).text.splitlines()
    assert len(cases) == 6 and json.loads(cases[0])["answer"] == "second try"


def _error(client, payload, status=422):
    r = client.post("/api/runs/import", json=payload)
    assert r.status_code == status, r.text
    assert client.get("/api/runs").json()["count"] == 0  # nothing stored
    return r.json()["error"]


def test_bad_lines_are_refused_with_line_and_field(client, pushed):
    lines = pushed["results"].splitlines()
    error = _error(client, body(pushed, results=lines[0] + "\n{not json\n"))
    assert error["line"] == 2 and error["source"] == "results" and "not a case result" in error["message"]
    broken = json.loads(lines[1])
    broken["latency_s"] = "slow"
    error = _error(client, body(pushed, results=lines[0] + "\n" + json.dumps(broken) + "\n"))
    assert error["line"] == 2 and error["field"] == "latency_s"


def test_a_case_outside_the_spec_is_refused(client, pushed):
    stranger = pushed["objects"][0].model_copy(update={"case_id": "abc", "strategy": "rag"})
    error = _error(client, body(pushed, results=pushed["results"] + stranger.model_dump_json() + "\n"))
    assert error["line"] == 7 and "is not a case of this spec" in error["message"]


def test_other_suite_content_empty_results_and_bad_checks_are_refused(client, pushed):
    other = client.post("/api/suites", json=suite_body(n_questions=3, salt="x")).json()["id"]
    assert _error(client, body(pushed, suite_id=other))["field"] == "spec.suite_hash"
    assert _error(client, body(pushed, results="\n"))["field"] == "results"
    assert _error(client, body(pushed, suite_id=999), status=404)["field"] == "suite_id"
    assert _error(client, body(pushed, checks=["rag:exact_match>=1"]))["field"] == "checks[0]"
    assert _error(client, body(pushed, spec={"nope": 1}))["field"].startswith("spec")
