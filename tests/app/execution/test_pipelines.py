"""The service runs a team's own pipeline (http_app, http_retriever) beside long_context, with the
pipeline's token from the service's environment, never stored with the run."""

from __future__ import annotations

from tests.app.execution.conftest import finished, wait_for
from tests.app.factories import endpoint_body, suite_body
from tests.fakes.pipeline_app import PipelineState, serve_pipeline

TOKEN = "pipe-token-7f3a"


def test_a_service_run_compares_the_teams_pipeline_with_long_context(executing_client, fake_server,
                                                                     monkeypatch):
    monkeypatch.setenv("CTXEVAL_TEST_PIPE_TOKEN", TOKEN)
    client = executing_client
    with serve_pipeline(PipelineState(token=TOKEN)) as pipe:
        eid = client.post("/api/endpoints", json=endpoint_body(base_url=fake_server.base_url)).json()["id"]
        sid = client.post("/api/suites", json=suite_body(n_questions=3)).json()["id"]
        common = {"url": pipe.url, "token_env": "CTXEVAL_TEST_PIPE_TOKEN", "push_index": True}
        r = client.post("/api/runs", json={
            "suite_id": sid, "endpoint_ids": [eid], "scorers": ["exact_match"],
            "strategies": [{"name": "long_context"}, {"name": "http_app", "label": "our_app", "params": common},
                           {"name": "http_retriever", "label": "our_search", "params": {**common, "k": 2}}]})
        assert r.status_code == 201, r.text
        run = wait_for(client, r.json()["id"], finished)
        assert run["status"] == "completed", run
        assert TOKEN not in r.text and TOKEN not in client.get(f"/api/runs/{run['id']}").text
        cases = client.get(f"/api/runs/{run['id']}/cases", params={"limit": 100}).json()["data"]
        by = {}
        for c in cases:
            by.setdefault(c["strategy"], []).append(c)
        assert set(by) == {"long_context", "our_app", "our_search"}
        assert all(c["outcome"] == "ok" for c in cases), [c.get("error_message") for c in cases]
        assert pipe.paths().count("/index") == 2
        summary = client.get(f"/api/runs/{run['id']}/summary").json()
        assert {g["strategy"] for g in summary["groups"]} == {"long_context", "our_app", "our_search"}
        paired = client.get(f"/api/runs/{run['id']}/compare",
                            params={"a": "long_context", "b": "our_app", "scorer": "exact_match"})
        assert paired.status_code == 200, paired.text
        assert paired.json()["n"] == 3
