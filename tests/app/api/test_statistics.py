"""Summary and paired comparison over the API, against values computed by hand, plus cases and export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from app import crud
from app.db import make_engine, session_scope
from evals.domain import Outcome
from tests.app.helpers import case_result, store, stored_run

LC = [1.0, 1.0, 0.0, 1.0]  # long_context exact_match per question
RAG = [1.0, 0.0, 0.0, 0.0]


@pytest.fixture
def run_id(settings):
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        run = stored_run(s, n_questions=4, scorers=("exact_match",))
        results = []
        for i in range(4):
            results.append(case_result(f"q{i}", "long_context", scores={"exact_match": LC[i]}, prompt_tokens=1000,
                                       context_tokens=900, cost_usd=0.004))
            results.append(case_result(
                f"q{i}", "rag", scores={"exact_match": RAG[i] if i != 3 else None}, prompt_tokens=100,
                context_tokens=900, cost_usd=0.001, outcome=Outcome.ok if i != 3 else Outcome.error,
                error_class=None if i != 3 else "timeout"))
        store(s, run, results)
        rid = run.id
    engine.dispose()
    return rid


def test_summary_matches_hand_computed_values(client, run_id):
    r = client.get(f"/api/runs/{run_id}/summary")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["primary"] == "exact_match" and body["n"] == 8
    groups = {g["strategy"]: g for g in body["groups"]}
    lc, rag = groups["long_context"], groups["rag"]
    assert lc["n"] == 4 and lc["scores"]["exact_match"]["mean"] == pytest.approx(0.75)
    assert lc["scores"]["exact_match"]["n"] == 4
    # the errored case has no answer: it counts as wrong (0), and the answered-only figure leaves it out
    assert rag["scores"]["exact_match"]["mean"] == pytest.approx(1 / 4)
    assert rag["scores"]["exact_match"]["n"] == 4
    assert rag["scores_answered"]["exact_match"]["mean"] == pytest.approx(1 / 3)
    assert (rag["answered"], rag["unanswered"]) == (3, {"error": 1})
    assert body["health"]["status"] == "completed_with_errors" and body["health"]["errors"] == 1
    assert body["recommendation"]["sentence"]
    assert rag["outcomes"]["error"] == 1 and rag["outcomes"]["ok"] == 3
    assert lc["prompt_tokens"]["sum"] == 4000 and lc["prompt_tokens"]["mean"] == 1000
    assert lc["cost_usd"]["sum"] == pytest.approx(0.016)
    assert rag["token_share"] == pytest.approx(0.1) and rag["token_share_versus"] == "long_context"
    low, high = lc["scores"]["exact_match"]["low"], lc["scores"]["exact_match"]["high"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0


def test_compare_matches_hand_computed_values(client, run_id):
    r = client.get(f"/api/runs/{run_id}/compare", params={"a": "long_context", "b": "rag"})
    assert r.status_code == 200, r.text
    body = r.json()
    # rag errored on q3: no answer counts 0, so four pairs (1,1) (1,0) (0,0) (1,0)
    assert (body["n"], body["wins"], body["losses"], body["ties"]) == (4, 0, 2, 2)
    assert body["mean_a"] == pytest.approx(3 / 4) and body["mean_b"] == pytest.approx(1 / 4)
    assert body["difference"]["mean"] == pytest.approx(-1 / 2)
    assert body["disagreements"] == ["q1", "q3"]
    assert body["mcnemar_p"] == pytest.approx(0.5)  # two discordant pairs one way: 2 · 1/4
    assert body["scorer"] == "exact_match" and body["endpoints"] == ["fake"]


def test_compare_names_the_unknown_strategy(client, run_id):
    r = client.get(f"/api/runs/{run_id}/compare", params={"a": "long_context", "b": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "b"
    assert client.get("/api/runs/999/compare", params={"a": "x", "b": "y"}).status_code == 404
    assert client.get("/api/runs/999/summary").status_code == 404


def test_cases_list_filter_and_one_case(client, run_id):
    page = client.get(f"/api/runs/{run_id}/cases", params={"strategy": "rag", "limit": 2}).json()
    assert page["count"] == 4 and len(page["data"]) == 2
    assert "answer" not in page["data"][0] and "prompt" not in page["data"][0]
    high = client.get(f"/api/runs/{run_id}/cases", params={"min_score": 1}).json()  # default: first scorer
    assert high["count"] == 4  # three long_context and one rag case scored 1
    errors = client.get(f"/api/runs/{run_id}/cases", params={"outcome": "error"}).json()
    assert [c["error_class"] for c in errors["data"]] == ["timeout"]
    case_id = page["data"][0]["case_id"]
    one = client.get(f"/api/runs/{run_id}/cases/{case_id}").json()
    assert one["answer"] == "answer to q0" and one["prompt"][0]["role"] == "user"
    assert client.get(f"/api/runs/{run_id}/cases/nope").status_code == 404
    assert client.get(f"/api/runs/{run_id}/cases", params={"outcome": "weird"}).status_code == 422


def test_export_csv_and_jsonl(client, run_id):
    r = client.get(f"/api/runs/{run_id}/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 8
    assert [row["score_exact_match"] for row in rows if row["strategy"] == "long_context"] == ["1.0", "1.0", "0.0",
                                                                                               "1.0"]
    assert rows[0]["answer"] == "answer to q0" and rows[0]["prompt_tokens"] == "1000"
    r = client.get(f"/api/runs/{run_id}/export", params={"format": "jsonl"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 8 and lines[1]["strategy"] == "rag" and lines[1]["usage"]["prompt_tokens"] == 100
    assert client.get(f"/api/runs/{run_id}/export", params={"format": "xml"}).status_code == 422


def test_summary_takes_alpha_margin_and_threshold(client, run_id):
    body = client.get(f"/api/runs/{run_id}/summary", params={"alpha": 0.1, "margin": 0.6}).json()
    rec = body["recommendation"]
    assert (rec["alpha"], rec["margin"]) == (0.1, 0.6)
    # rag is 0.5 behind on four questions: within a 60-point margin it is the cheaper pick … or undecided
    assert rec["overall"]["outcome"] in ("cheaper_within_margin", "too_few_data")
    assert client.get(f"/api/runs/{run_id}/summary", params={"alpha": 0.7}).status_code == 422


def test_resume_drops_stored_cases_whose_identity_left_the_plan(settings):
    """A stored case whose id does not cover the run's current case identity (here: stored without one,
    as by an older version) and an errored case are never reused: resume deletes them so they run again."""
    from app.services import runs as run_service

    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        run = stored_run(s, n_questions=2, strategies=("long_context",), status="failed")
        store(s, run, [case_result("q0", "long_context"), case_result("q1", "long_context")])
        errored, stale = run_service.reusable_cases(s, run)
        assert (errored, stale) == (0, 2)
        assert crud.stored_case_ids(s, run_id=run.id) == set()
    engine.dispose()


def test_resume_keeps_planned_cases_and_reruns_errored_ones(settings):
    from app.services import runs as run_service
    from evals.runner import plan_cases

    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        run = stored_run(s, n_questions=2, strategies=("long_context",), status="completed_with_errors")
        from evals.domain import RunSpec

        plans = plan_cases(RunSpec.model_validate(run.spec), crud.load_suite(s, record=crud.get_suite(s, suite_id=run.suite_id)))
        good = case_result(plans[0].question_id, "long_context", case_id=plans[0].case_id)
        bad = case_result(plans[1].question_id, "long_context", case_id=plans[1].case_id, outcome=Outcome.error,
                          error_class="timeout")
        store(s, run, [good, bad])
        assert run_service.reusable_cases(s, run) == (1, 0)
        assert crud.stored_case_ids(s, run_id=run.id) == {plans[0].case_id}
    engine.dispose()


def test_case_rows_read_back_equal_validated_ones() -> None:
    """Rows read for summaries are built without validation; they are CaseRows equal to validated ones."""
    from app.services.statistics import _NAMES, _case_row
    from evals import CaseRow, Outcome

    full = CaseRow(case_id="c", question_id="q", endpoint="e", strategy="s", strategy_name="rag",
                   outcome=Outcome.ok, scores={"f1": 0.5}, latency_s=1.5)
    fast = _case_row({n: getattr(full, n) for n in _NAMES})
    assert isinstance(fast, CaseRow) and fast == full and fast.model_dump() == full.model_dump()
    assert fast.model_copy(update={"scores": {}}).scores == {} and fast.scores == {"f1": 0.5}
