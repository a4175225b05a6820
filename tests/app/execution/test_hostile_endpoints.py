"""Runs executed by the service against hostile endpoints, on SQLite and PostgreSQL: an echoed key is
stored nowhere (case rows, case detail, exports, question pages), an endless answer is cut and kept
truncated as ``answer_too_long``, a malformed answer is ``malformed_response``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from evals.client import answer_limit
from tests.app.execution.conftest import finished, wait_for
from tests.app.factories import endpoint_body, suite_body
from tests.fakes.hostile import hostile_server

KEY = "sk-LEAKCHECK-7f3a9c2e1d5b"


def _run(client: TestClient, base_url: str, questions: int = 2) -> dict[str, Any]:
    eid = client.post("/api/endpoints", json=endpoint_body(base_url=base_url, api_key=KEY, max_retries=0)).json()["id"]
    sid = client.post("/api/suites", json=suite_body(n_questions=questions)).json()["id"]
    r = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid], "strategies": [{"name": "no_context"}]})
    assert r.status_code == 201, r.text
    return wait_for(client, r.json()["id"], finished)


def _everything_shown(client: TestClient, run_id: int) -> str:
    cases = client.get(f"/api/runs/{run_id}/cases").json()["data"]
    parts = [client.get(f"/api/runs/{run_id}/cases").text,
             client.get(f"/api/runs/{run_id}/export?format=csv").text,
             client.get(f"/api/runs/{run_id}/export?format=jsonl").text]
    for case in cases:
        parts.append(client.get(f"/api/runs/{run_id}/cases/{case['case_id']}").text)
        parts.append(client.get(f"/runs/{run_id}/questions/{case['question_id']}").text)
    return "\n".join(parts)


@pytest.mark.parametrize("mode", ["echokey", "echokey500", "echokeystream"])
def test_an_echoed_key_is_stored_and_shown_nowhere(executing_client: TestClient, mode: str) -> None:
    with hostile_server(mode) as server:
        run = _run(executing_client, server.base_url)
        assert server.keys_seen()  # the server did get (and echo) the key
    cases = executing_client.get(f"/api/runs/{run['id']}/cases").json()["data"]
    assert cases and all(c["outcome"] == "error" and "***" in c["error_message"] for c in cases)
    shown = _everything_shown(executing_client, run["id"])
    assert "LEAKCHECK" not in shown


def test_an_endless_answer_is_cut_and_stored_truncated(executing_client: TestClient) -> None:
    with hostile_server("endless") as server:
        run = _run(executing_client, server.base_url, questions=1)
        assert server.sent_bytes < 64 * 1024 * 1024
    case = executing_client.get(f"/api/runs/{run['id']}/cases").json()["data"][0]
    assert (case["outcome"], case["error_class"]) == ("error", "answer_too_long")
    detail = executing_client.get(f"/api/runs/{run['id']}/cases/{case['case_id']}").json()
    limit = answer_limit(16)
    assert len(detail["answer"]) == limit
    assert detail["metadata"]["answer_truncated"]["limit_chars"] == limit


def test_a_malformed_answer_is_malformed_response(executing_client: TestClient) -> None:
    with hostile_server("body") as server:
        server.body = {"choices": "abc"}
        run = _run(executing_client, server.base_url, questions=1)
    case = executing_client.get(f"/api/runs/{run['id']}/cases").json()["data"][0]
    assert (case["outcome"], case["error_class"]) == ("error", "malformed_response")
