"""Creating runs from a matrix, the estimate, and the errors that name what to fix."""

from __future__ import annotations

import pytest

from evals import prompts
from evals.tokens import local_tokenizer
from tests.app.factories import endpoint_body, suite_body


@pytest.fixture
def ids(client):
    e1 = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    e2 = client.post("/api/endpoints", json=endpoint_body(name="small", context_window=300,
                                                          max_output_tokens=20)).json()["id"]
    sid = client.post("/api/suites", json=suite_body(n_questions=3)).json()["id"]
    return {"e1": e1, "e2": e2, "suite": sid}


def body(ids, **kw):
    base = {"suite_id": ids["suite"], "endpoint_ids": [ids["e1"]], "strategies": [{"name": "long_context"}]}
    base.update(kw)
    return base


def test_create_a_matrix_run_queues_it(client, ids):
    r = client.post("/api/runs", json=body(ids, endpoint_ids=[ids["e1"], ids["e2"]], name="first",
                                           strategies=[{"name": "no_context"}, {"name": "rag", "params": {"k": 2}}]))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "queued" and run["total_cases"] == 3 * 2 * 2 and run["attempt"] == 1
    assert run["name"] == "first" and run["progress"] == {
        "done": 0, "total": 12, "fraction": 0.0, "outcomes": {}, "prompt_tokens": 0, "completion_tokens": 0,
        "cached_tokens": 0, "cost_usd": 0.0, "elapsed_s": None, "eta_s": None}
    assert run["spec"]["scorers"][0] == "exact_match"  # the suite's default scorers
    assert [e["name"] for e in run["spec"]["endpoints"]] == ["fake", "small"]
    assert all("api_key" not in e for e in run["spec"]["endpoints"])
    listed = client.get("/api/runs").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == run["id"]
    assert client.get("/api/runs", params={"status": "completed"}).json()["count"] == 0
    assert client.get(f"/api/suites/{ids['suite']}").json()["n_runs"] == 1
    r = client.delete(f"/api/suites/{ids['suite']}")
    assert r.status_code == 409


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"suite_id": 999}, 404, "suite_id"),
    ({"endpoint_ids": [999]}, 404, "endpoint_ids[0]"),
    ({"strategies": [{"name": "long_context"}, {"name": "nope"}]}, 422, "strategies[1].name"),
    ({"strategies": [{"name": "rag", "params": {"k": 0}}]}, 422, "strategies[0].params.k"),
    ({"strategies": [{"name": "rag", "params": {"bogus": 1}}]}, 422, "strategies[0].params.bogus"),
    ({"strategies": []}, 422, "strategies"),
    ({"scorers": ["no_such_scorer"]}, 422, None),
    ({"suite_id": "x"}, 422, "suite_id"),
    ({"extra": 1}, 422, "extra"),
])
def test_bad_matrices_name_the_field(client, ids, change, status, field):
    r = client.post("/api/runs", json=body(ids, **change))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    if field is not None:
        assert error["field"] == field
    else:
        assert "no_such_scorer" in error["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_the_same_endpoint_twice_is_refused(client, ids):
    r = client.post("/api/runs", json=body(ids, endpoint_ids=[ids["e1"], ids["e1"]]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "endpoint_ids[1]"


def test_estimate_counts_cases_tokens_and_cost_before_starting(client, ids):
    suite = suite_body(n_questions=3)
    tok = local_tokenizer("cl100k")
    r = client.post("/api/runs/estimate", json=body(ids, endpoint_ids=[ids["e1"], ids["e2"]], strategies=[
        {"name": "no_context"}, {"name": "long_context"}, {"name": "rag", "params": {"k": 1, "chunk_tokens": 32,
                                                                                 "overlap_tokens": 0}}]))
    assert r.status_code == 200, r.text
    est = r.json()
    assert est["cases"] == 3 * 2 * 3
    no_context = sum(tok.count(prompts.SYSTEM_NO_CONTEXT + prompts.no_context_user(q["question"])) + 16
                     for q in suite["questions"])
    docs = "\n\n".join(f"[Document {i + 1}: {d['id']}] {d['title']}\n{d['text']}" for i, d in enumerate(suite["documents"]))
    frames = [tok.count(prompts.SYSTEM + prompts.long_context_user("", q["question"])) + 16 for q in suite["questions"]]
    long_context = sum(f + tok.count(docs) for f in frames)
    rag = sum(f + 32 for f in frames)
    by = est["by_strategy"]
    # endpoint "fake" sends everything; "small" (window 300) refuses the long context
    assert by["no_context"]["prompt_tokens"] == 2 * no_context
    assert by["long_context"]["prompt_tokens"] == long_context and by["long_context"]["not_sent"] == 3
    assert by["rag[chunk_tokens=32,k=1,overlap_tokens=0]"]["prompt_tokens"] == 2 * rag
    assert est["prompt_tokens"] == 2 * no_context + long_context + 2 * rag
    assert est["completion_tokens"] == 9 * 16 + 6 * 20  # max_output_tokens of each sent case
    fake_tokens = no_context + long_context + rag
    small_tokens = no_context + rag
    expected_cost = (fake_tokens * 1.0 + 9 * 16 * 2.0 + small_tokens * 1.0 + 6 * 20 * 2.0) / 1e6
    assert est["cost_usd"] == pytest.approx(expected_cost)
    assert any("will not be sent" in a for a in est["assumptions"])
    assert client.get("/api/runs").json()["count"] == 0  # nothing was started


def test_run_actions_on_unknown_or_finished_runs(client, ids):
    for method, path in [("get", "/api/runs/77"), ("post", "/api/runs/77/cancel"), ("post", "/api/runs/77/resume"),
                         ("post", "/api/runs/77/rerun"), ("delete", "/api/runs/77"), ("get", "/api/runs/77/cases"),
                         ("get", "/api/runs/77/export")]:
        r = client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["message"] == "run 77 not found"
    run = client.post("/api/runs", json=body(ids)).json()
    assert client.post(f"/api/runs/{run['id']}/resume").status_code == 409  # still queued
    assert client.post(f"/api/runs/{run['id']}/cancel").json()["status"] == "cancelled"
    assert client.post(f"/api/runs/{run['id']}/resume").json()["status"] == "queued"
    assert client.post(f"/api/runs/{run['id']}/resume", params={"force": True}).json()["attempt"] == 3


def test_judge_and_embeddings_are_stored_endpoints_without_keys(client, ids):
    r = client.post("/api/runs", json=body(ids, scorers=["exact_match", "llm_judge"]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "judge_endpoint_id"
    r = client.post("/api/runs", json=body(ids, judge_endpoint_id=999))
    assert r.status_code == 404 and r.json()["error"]["field"] == "judge_endpoint_id"
    r = client.post("/api/runs", json=body(
        ids, scorers=["exact_match", "llm_judge"], judge_endpoint_id=ids["e2"],
        strategies=[{"name": "rag", "params": {"retriever": "dense"}}],
        embeddings={"source": "endpoint", "endpoint_id": ids["e2"], "model": "embedder"}))
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert spec["judge"]["name"] == "small" and "api_key" not in spec["judge"]
    assert spec["embeddings"]["endpoint"]["name"] == "small" and spec["embeddings"]["model"] == "embedder"
    assert "sk-secret" not in r.text
    eid = ids["e2"]  # the judge of a queued run cannot be deleted
    assert client.delete(f"/api/endpoints/{eid}").status_code == 409
    est = client.post("/api/runs/estimate", json=body(
        ids, scorers=["llm_judge"], judge_endpoint_id=ids["e2"],
        strategies=[{"name": "rag", "params": {"retriever": "dense"}}])).json()
    assert any("judge" in a for a in est["assumptions"]) and any("embedding" in a for a in est["assumptions"])


def test_estimate_counts_long_context_cases_that_cannot_fit_under_a_preset(client):
    from evals.suites.ruler_niah import generate_ruler_niah_single

    suite = generate_ruler_niah_single({"lengths": [2000, 8192]}, local_tokenizer("cl100k"))
    sid = client.post("/api/suites", json=suite.model_dump(mode="json")).json()["id"]
    fits = client.post("/api/endpoints", json=endpoint_body(name="w8k", context_window=8192)).json()["id"]
    small = client.post("/api/endpoints", json=endpoint_body(name="w4k", context_window=4096)).json()["id"]
    est = client.post("/api/runs/estimate", json={"suite_id": sid, "endpoint_ids": [fits, small],
                                                   "strategies": [{"name": "long_context"}]}).json()
    assert est["over_window"] == 1  # the 8,192-token question on the 4,096-token window only
    assert est["completion_tokens"] == 3 * 128  # RULER's tokens_to_generate, not max_output_tokens
    assert any("'ruler' preset" in a for a in est["assumptions"])
    run = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [fits],
                                         "strategies": [{"name": "long_context"}], "preset": "ctxeval"}).json()
    assert run["spec"]["preset"] == "ctxeval"
    r = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [fits],
                                       "strategies": [{"name": "long_context"}], "preset": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "preset"
