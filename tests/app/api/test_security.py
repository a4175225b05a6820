"""The service against hostile requests, on SQLite and PostgreSQL: keys follow no changed base URL,
no cross-site write and no foreign Host gets through, every malformed input is a 4xx naming what to
fix, CSV exports are spreadsheet-safe, logs hold no key."""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import log_scrub
from app.execution.engines import load_run_inputs
from app.main import create_app
from app.models import CaseRecord, EndpointRecord, RunRecord, SuiteRecord
from app.settings import Settings
from evals import limits
from evals.domain import Outcome
from tests.app.factories import endpoint_body, suite_body
from tests.app.helpers import case_result, store, stored_run
from tests.evals.test_security import yaml_bomb
from tests.fakes.hostile import hostile_server

KEY = "sk-LEAKCHECK-7f3a9c2e1d5b"
EVIL = {"Origin": "http://evil.example"}


def _endpoint(client: TestClient, base_url: str, **kw: Any) -> dict[str, Any]:
    r = client.post("/api/endpoints", json=endpoint_body(base_url=base_url, api_key=KEY, **kw))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------- 1. the key stays home
def test_a_new_base_url_clears_the_key_and_says_so(client: TestClient) -> None:
    with hostile_server() as home, hostile_server() as thief:
        eid = _endpoint(client, home.base_url)["id"]
        kept = client.patch(f"/api/endpoints/{eid}", json={"concurrency": 3}).json()
        assert kept["has_api_key"] and not kept["api_key_cleared"]
        moved = client.patch(f"/api/endpoints/{eid}", json={"base_url": thief.base_url})
        assert moved.status_code == 200
        assert moved.json()["api_key_cleared"] is True and moved.json()["has_api_key"] is False
        assert client.post(f"/api/endpoints/{eid}/probe").status_code == 200
        assert thief.keys_seen() == [] and thief.seen  # probed, without the key
        back = client.patch(f"/api/endpoints/{eid}", json={"base_url": home.base_url}).json()
        assert back["has_api_key"] is False and not back["api_key_cleared"]  # removed, not hidden
        client.post(f"/api/endpoints/{eid}/probe")
        assert home.keys_seen() == []


def test_a_new_base_url_with_its_own_key_keeps_that_key(client: TestClient) -> None:
    with hostile_server() as home, hostile_server() as other:
        eid = _endpoint(client, home.base_url)["id"]
        r = client.patch(f"/api/endpoints/{eid}", json={"base_url": other.base_url, "api_key": "sk-other-0123456789"})
        assert r.json()["has_api_key"] and not r.json()["api_key_cleared"]
        client.post(f"/api/endpoints/{eid}/probe")
        assert set(other.keys_seen()) == {"Bearer sk-other-0123456789"} and home.seen == []


def test_a_run_spec_naming_an_old_base_url_gets_no_key(client: TestClient) -> None:
    """A run created while the endpoint pointed elsewhere never receives the key entered later."""
    eid = client.post("/api/endpoints", json=endpoint_body(base_url="http://127.0.0.1:9", api_key=None)).json()["id"]
    sid = client.post("/api/suites", json=suite_body()).json()["id"]
    run = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                         "strategies": [{"name": "no_context"}]}).json()
    client.patch(f"/api/endpoints/{eid}", json={"base_url": "http://127.0.0.1:10", "api_key": KEY})
    db = client.app.state.db  # type: ignore[attr-defined]
    assert load_run_inputs(db, run["id"]).endpoints["fake"].request_key() is None
    rerun = client.post(f"/api/runs/{run['id']}/rerun").json()  # the same spec, the same old URL
    assert load_run_inputs(db, rerun["id"]).endpoints["fake"].request_key() is None
    fresh = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                           "strategies": [{"name": "no_context"}], "name": "new"}).json()
    assert load_run_inputs(db, fresh["id"]).endpoints["fake"].request_key() == KEY


# --------------------------------------------------------------------------- 3. cross-site, Host
def test_cross_site_writes_are_refused_without_a_token(client: TestClient) -> None:
    sid = client.post("/api/suites", json=suite_body()).json()["id"]
    eid = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    run = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                         "strategies": [{"name": "no_context"}]}).json()
    upload = {"file": ("csrf.json", json.dumps(suite_body(name="csrf")).encode())}
    for headers in (EVIL, {"Origin": "null"}, {"Referer": "http://evil.example/page"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
                    {"Origin": "http://127.0.0.1:9999"}):
        assert client.post(f"/api/runs/{run['id']}/rerun", headers=headers).status_code == 403, headers
        assert client.post("/api/suites/upload", headers=headers, files=upload).status_code == 403, headers
        assert client.post(f"/api/runs/{run['id']}/cancel", headers=headers).status_code == 403, headers
        assert client.delete(f"/api/suites/{sid}", headers=headers).status_code == 403, headers
    assert client.get("/api/runs").json()["count"] == 1
    assert client.get("/api/suites", params={"name": "csrf"}).json()["count"] == 0
    assert client.get(f"/api/runs/{run['id']}").json()["status"] == "queued"
    # the same requests from the service's own pages, and from scripts (no browser headers), pass
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/suites/upload", headers=same, files=upload).status_code == 201
    assert client.post(f"/api/runs/{run['id']}/rerun").status_code == 201


def test_a_bearer_token_passes_from_any_origin(database_url: str) -> None:
    from app import crud
    from app.db import make_engine, session_scope

    engine = make_engine(database_url)
    with session_scope(engine) as s:
        token = crud.create_token(s, name="ci")[1]
    engine.dispose()
    settings = Settings(database_url=database_url, execution="none", auth="on")
    with TestClient(create_app(settings)) as c:
        auth = {"Authorization": f"Bearer {token}", **EVIL}
        assert c.post("/api/suites", json=suite_body(), headers=auth).status_code == 201
        assert c.post("/api/suites", json=suite_body(name="b"), headers=EVIL).status_code == 403
        c.cookies.set("ctxeval_token", token)  # a cookie never stands in for the header cross-site
        assert c.post("/api/suites", json=suite_body(name="c"), headers=EVIL).status_code == 403


def test_a_foreign_host_is_refused(client: TestClient, database_url: str) -> None:
    r = client.get("/api/endpoints", headers={"Host": "evil.example:8308"})
    assert r.status_code == 400 and "CTXEVAL_ALLOWED_HOSTS" in r.json()["error"]["message"]
    assert client.post("/api/suites", json=suite_body(), headers={"Host": "rebind.evil.example"}).status_code == 400
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    listed = Settings(database_url=database_url, execution="none", allowed_hosts="evals.example.com")
    with TestClient(create_app(listed)) as c:
        assert c.get("/api/health", headers={"Host": "evals.example.com"}).status_code == 200
        assert c.get("/api/health", headers={"Host": "evil.example"}).status_code == 400


def test_host_defaults_follow_the_bound_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTXEVAL_ALLOWED_HOSTS")  # the tests' own "testserver"
    assert Settings(host="10.0.0.5", auth="off").host_names == frozenset(
        {"10.0.0.5", "localhost", "127.0.0.1", "::1"})
    assert Settings(host="0.0.0.0", auth="on").host_names is None  # tokens guard a wildcard bind
    open_wildcard = Settings(host="0.0.0.0", auth="off").host_names
    assert open_wildcard is not None and "evil.example" not in open_wildcard
    assert Settings(allowed_hosts="*").host_names is None


# ------------------------------------------------------------------------------- 4-6. input limits
SURROGATE_SUITE = json.dumps(suite_body()).replace('"What is', '"\\ud800What is', 1)


def _refused(r: Any, *, field: str | None = None, words: str = "") -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    error = r.json()["error"]
    if field is not None:
        assert error["field"] == field, error
    assert words in error["message"], error
    return error  # type: ignore[no-any-return]


def test_lone_surrogates_are_refused_with_their_position(client: TestClient) -> None:
    for r in (client.post("/api/suites", content=SURROGATE_SUITE, headers={"content-type": "application/json"}),
              client.post("/api/suites/upload", files={"file": ("s.json", SURROGATE_SUITE.encode())})):
        _refused(r, field="questions[0].question", words="lone surrogate U+D800 at character 0")
    jsonl = '{"type": "suite", "name": "s"}\n{"type": "question", "id": "q", "question": "\\udfffx"}\n'
    error = _refused(client.post("/api/suites/upload", files={"file": ("s.jsonl", jsonl.encode())}),
                     words="lone surrogate U+DFFF")
    assert error["line"] == 2 and error["source"] == "s.jsonl"
    endpoint = json.dumps(endpoint_body()).replace('"fake-model"', '"\\udc80"')
    _refused(client.post("/api/endpoints", content=endpoint, headers={"content-type": "application/json"}),
             field="model", words="surrogate")


def test_a_nul_character_is_refused_alike_on_both_databases(client: TestClient) -> None:
    body = suite_body()
    body["documents"][0]["text"] = "before\x00after"
    _refused(client.post("/api/suites", json=body), field="documents[0].text", words="NUL character (U+0000) at "
                                                                                   "character 6")


@pytest.mark.parametrize("value", ["9" * 5000, "9223372036854775808", "[" * 100_000 + "]" * 100_000, "NaN"])
def test_huge_integers_deep_nesting_and_nan_are_422(client: TestClient, value: str) -> None:
    text = json.dumps(suite_body())[:-1] + f', "metadata": {{"n": {value}}}}}'
    _refused(client.post("/api/suites", content=text, headers={"content-type": "application/json"}))
    _refused(client.post("/api/suites/upload", files={"file": ("s.json", text.encode())}))
    assert client.get("/api/suites").json()["count"] == 0


def test_a_yaml_alias_bomb_is_refused_fast_and_stores_nothing(client: TestClient) -> None:
    r = client.post("/api/suites/upload", files={"file": ("ybomb7.yaml", yaml_bomb(7).encode())})
    _refused(r, words="aliases expand")
    assert client.get("/api/suites").json()["count"] == 0


def test_lengths_are_checked_at_the_api_with_the_column_limits(client: TestClient) -> None:
    columns = {
        "endpoint.name": (EndpointRecord, "name", limits.ENDPOINT_NAME_MAX),
        "suite.name": (SuiteRecord, "name", limits.SUITE_NAME_MAX),
        "run.name": (RunRecord, "name", limits.RUN_NAME_MAX),
        "case.strategy": (CaseRecord, "strategy", limits.STRATEGY_KEY_MAX),
        "case.strategy_name": (CaseRecord, "strategy_name", limits.STRATEGY_NAME_MAX),
        "case.question_id": (CaseRecord, "question_id", limits.ITEM_ID_MAX),
    }
    for name, (table, column, limit) in columns.items():
        assert table.__table__.c[column].type.length == limit, name  # type: ignore[attr-defined]
    _refused(client.post("/api/endpoints", json=endpoint_body(name="e" * (limits.ENDPOINT_NAME_MAX + 1))),
             field="name")
    _refused(client.post("/api/suites", json=suite_body(name="s" * (limits.SUITE_NAME_MAX + 1))), field="name")


def test_a_long_strategy_label_is_refused_before_any_endpoint_call(client: TestClient) -> None:
    with hostile_server() as server:
        eid = _endpoint(client, server.base_url)["id"]
        sid = client.post("/api/suites", json=suite_body()).json()["id"]
        for strategy in ({"name": "no_context", "label": "L" * 300},
                         {"name": "rag", "params": {"retriever": "bm25", "chunk_tokens": 64, "k": 3,
                                                    "extra": "p" * 300}}):
            body = {"suite_id": sid, "endpoint_ids": [eid], "strategies": [strategy]}
            _refused(client.post("/api/runs", json=body))
            _refused(client.post("/api/runs/estimate", json=body))
        _refused(client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid], "name": "n" * 201,
                                                "strategies": [{"name": "no_context"}]}), field="name")
        assert client.get("/api/runs").json()["count"] == 0 and server.seen == []


# --------------------------------------------------------------------------------- 7. CSV export
def test_csv_export_is_spreadsheet_safe_unless_raw(client: TestClient) -> None:
    db = client.app.state.db  # type: ignore[attr-defined]
    hostile = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    with Session(db) as session:
        run = stored_run(session, n_questions=1, strategies=("long_context",))
        results = [case_result("q0", "long_context", answer=hostile[0], outcome=Outcome.error,
                               error_class="server_error", error_message=hostile[3])]
        store(session, run, results)
        run_id = run.id
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/runs/{run_id}/export?format=csv").text)))
    assert rows[0]["answer"] == "'" + hostile[0] and rows[0]["error_message"] == "'" + hostile[3]
    raw = list(csv.DictReader(io.StringIO(client.get(f"/api/runs/{run_id}/export?format=csv&raw=true").text)))
    assert raw[0]["answer"] == hostile[0] and raw[0]["error_message"] == hostile[3]
    from app.services.export import spreadsheet_safe

    assert [spreadsheet_safe(v) for v in hostile] == ["'" + v for v in hostile]
    assert spreadsheet_safe(-0.5) == -0.5 and spreadsheet_safe("plain") == "plain"


# ------------------------------------------------------------------------------- 2. stored errors
def test_key_shapes_never_reach_the_case_rows(client: TestClient) -> None:
    db = client.app.state.db  # type: ignore[attr-defined]
    with Session(db) as session:
        run = stored_run(session, n_questions=1, strategies=("long_context",))
        store(session, run, [case_result("q0", "long_context", outcome=Outcome.error, error_class="bad_request",
                                         error_message=f"request refused (HTTP 401): bad header Bearer {KEY}")])
        run_id = run.id
    cases = client.get(f"/api/runs/{run_id}/cases").text
    assert "LEAKCHECK" not in cases and "Bearer ***" in cases


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    log_scrub.install()
    log_scrub.remember_secret("plain-unshaped-key-77")
    with caplog.at_level(logging.WARNING):
        logging.getLogger("ctxeval.test").warning("endpoint said %s and %s", f"Bearer {KEY}",
                                                  "plain-unshaped-key-77")
        try:
            raise ValueError(f"boom {KEY}")
        except ValueError:
            logging.getLogger("ctxeval.test").exception("failed")
    text = caplog.text
    assert "LEAKCHECK" not in text and "plain-unshaped-key-77" not in text and "boom ***" in text
