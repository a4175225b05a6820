"""One base-URL rule, probe findings saved and applied, and a probe that finds no OpenAI server."""

from __future__ import annotations

import pytest

from evals.domain import Endpoint, normalise_base_url
from tests.app.factories import endpoint_body


@pytest.mark.parametrize("given", ["http://127.0.0.1:8001", "http://127.0.0.1:8001/", "http://127.0.0.1:8001/v1",
                                   " http://127.0.0.1:8001/v1/ ", "http://127.0.0.1:8001//v1//"])
def test_one_rule_for_base_urls(given):
    assert normalise_base_url(given) == "http://127.0.0.1:8001"
    assert Endpoint(name="e", base_url=given, model="m").base_url == "http://127.0.0.1:8001"


def test_a_path_before_v1_is_kept_and_bad_urls_are_refused():
    assert normalise_base_url("https://api.example.com/openai/v1") == "https://api.example.com/openai"
    assert normalise_base_url("http://h/v10") == "http://h/v10"
    for bad in ("127.0.0.1:8001", "ftp://h", "http://", "http:///v1"):
        with pytest.raises(ValueError):
            normalise_base_url(bad)


def test_the_api_stores_the_root_on_create_and_update(client):
    r = client.post("/api/endpoints", json=endpoint_body(base_url="http://127.0.0.1:9/v1/"))
    assert r.status_code == 201 and r.json()["base_url"] == "http://127.0.0.1:9"
    eid = r.json()["id"]
    r = client.patch(f"/api/endpoints/{eid}", json={"base_url": "http://127.0.0.1:10/v1"})
    assert r.json()["base_url"] == "http://127.0.0.1:10"


def test_probe_through_a_v1_url_works_and_its_findings_are_saved_and_applied(client, fake_server):
    body = endpoint_body(base_url=fake_server.base_url + "/v1")
    eid = client.post("/api/endpoints", json=body).json()["id"]
    assert client.get(f"/api/endpoints/{eid}").json()["context_window"] is None
    r = client.post(f"/api/endpoints/{eid}/probe")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["result"]["models_listed"] and out["result"]["chat_works"], out["result"]["errors"]
    assert out["unreachable"] is None
    assert out["applied"] == {"context_window": 32768, "tokenizer": "server"} | (
        {"supports_tools": out["result"]["tool_calls_work"]} if out["result"]["tool_calls_work"] is not None else {})
    got = client.get(f"/api/endpoints/{eid}").json()
    assert got["context_window"] == 32768 and got["tokenizer"] == "server"
    assert got["probe"]["result"]["context_window"] == 32768 and got["probe"]["probed_at"]
    assert got["probe"]["applied"]["context_window"] == 32768


def test_a_value_the_user_set_is_never_overwritten(client, fake_server):
    eid = client.post("/api/endpoints", json=endpoint_body(base_url=fake_server.base_url,
                                                           context_window=8000)).json()["id"]
    out = client.post(f"/api/endpoints/{eid}/probe").json()
    assert "context_window" not in out["applied"]
    got = client.get(f"/api/endpoints/{eid}").json()
    assert got["context_window"] == 8000 and got["probe"]["kept"] == {"context_window": 8000}
    # cleared by the user: the next probe fills it in; a later user value then wins again
    client.patch(f"/api/endpoints/{eid}", json={"context_window": None})
    client.post(f"/api/endpoints/{eid}/probe")
    assert client.get(f"/api/endpoints/{eid}").json()["context_window"] == 32768
    client.patch(f"/api/endpoints/{eid}", json={"context_window": 16000})
    out = client.post(f"/api/endpoints/{eid}/probe").json()
    got = client.get(f"/api/endpoints/{eid}").json()
    assert got["context_window"] == 16000 and "context_window" not in got["probe"]["applied"]


def test_a_probe_with_every_check_failing_says_not_reachable_with_the_cause(client, fake_server):
    dead = client.post("/api/endpoints", json=endpoint_body(name="dead", base_url="http://127.0.0.1:9")).json()["id"]
    out = client.post(f"/api/endpoints/{dead}/probe").json()
    assert "not reachable as an OpenAI-compatible server" in out["unreachable"]
    assert "nothing answered" in out["unreachable"]
    wrong = client.post("/api/endpoints", json=endpoint_body(name="wrong", base_url=fake_server.base_url + "/api/v1"))
    out = client.post(f"/api/endpoints/{wrong.json()['id']}/probe").json()
    assert out["result"]["reachable"] and not out["result"]["chat_works"]
    assert "not reachable as an OpenAI-compatible server" in out["unreachable"]
    assert "server's root" in out["unreachable"], out
    assert client.get(f"/api/endpoints/{wrong.json()['id']}").json()["probe"]["unreachable"] == out["unreachable"]


def test_a_probe_saved_in_an_older_shape_is_dropped_not_a_500(client, settings):
    from app import crud
    from app.db import make_engine, session_scope

    eid = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as s:
            record = crud.get_endpoint(s, endpoint_id=eid)
            record.probe = {"result": {"no such": "shape"}, "probed_at": "yesterday"}
            s.add(record)
            s.commit()
    finally:
        engine.dispose()
    r = client.get(f"/api/endpoints/{eid}")
    assert r.status_code == 200 and r.json()["probe"] is None
    assert client.get(f"/endpoints/{eid}").status_code == 200
