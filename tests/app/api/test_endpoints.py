"""Endpoints over the API: keys are write-only, never returned and never logged."""

from __future__ import annotations

import logging

from tests.app.factories import endpoint_body

SECRET = "sk-secret-abc123"


def test_create_get_list_never_return_the_key(client, caplog):
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/endpoints", json=endpoint_body())
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["has_api_key"] is True and "api_key" not in created
    assert created["concurrency"] == 2 and created["name"] == "fake"
    got = client.get(f"/api/endpoints/{created['id']}")
    listed = client.get("/api/endpoints")
    assert got.json() == created
    assert listed.json()["count"] == 1 and listed.json()["data"] == [created]
    for resp in (r, got, listed):
        assert SECRET not in resp.text
    assert SECRET not in caplog.text


def test_key_is_stored_apart_and_kept_removed_or_replaced(client, settings):
    from app import crud
    from app.db import make_engine, session_scope

    eid = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as s:
            assert crud.get_endpoint(s, endpoint_id=eid).config.get("api_key") is None
            assert crud.get_endpoint_key(s, endpoint_id=eid) == SECRET
        r = client.patch(f"/api/endpoints/{eid}", json={"concurrency": 5})
        assert r.status_code == 200 and r.json()["concurrency"] == 5 and r.json()["has_api_key"]
        with session_scope(engine) as s:
            assert crud.get_endpoint_key(s, endpoint_id=eid) == SECRET
        r = client.patch(f"/api/endpoints/{eid}", json={"api_key": "sk-new"})
        assert r.json()["has_api_key"]
        with session_scope(engine) as s:
            assert crud.get_endpoint_key(s, endpoint_id=eid) == "sk-new"
        r = client.patch(f"/api/endpoints/{eid}", json={"api_key": None})
        assert r.json()["has_api_key"] is False
        with session_scope(engine) as s:
            assert crud.get_endpoint_key(s, endpoint_id=eid) is None
    finally:
        engine.dispose()


def test_update_validates_the_merged_endpoint(client):
    eid = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    r = client.patch(f"/api/endpoints/{eid}", json={"base_url": "ftp://nope"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "base_url"
    r = client.patch(f"/api/endpoints/{eid}", json={"concurrency": 0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "concurrency"
    r = client.patch(f"/api/endpoints/{eid}", json={"nonsense": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "nonsense"


def test_duplicate_name_conflicts_and_unknown_ids_are_404(client):
    assert client.post("/api/endpoints", json=endpoint_body()).status_code == 201
    r = client.post("/api/endpoints", json=endpoint_body())
    assert r.status_code == 409 and r.json()["error"]["field"] == "name"
    other = client.post("/api/endpoints", json=endpoint_body(name="other")).json()["id"]
    assert client.patch(f"/api/endpoints/{other}", json={"name": "fake"}).status_code == 409
    for method, path in [("get", "/api/endpoints/999"), ("patch", "/api/endpoints/999"),
                         ("delete", "/api/endpoints/999"), ("post", "/api/endpoints/999/probe")]:
        r = client.request(method, path, json={} if method == "patch" else None)
        assert r.status_code == 404, (method, r.text)
        assert r.json()["error"]["message"] == "endpoint 999 not found"


def test_delete(client):
    eid = client.post("/api/endpoints", json=endpoint_body()).json()["id"]
    assert client.delete(f"/api/endpoints/{eid}").status_code == 204
    assert client.get(f"/api/endpoints/{eid}").status_code == 404
    assert client.get("/api/endpoints").json()["count"] == 0


def test_probe_reports_what_the_endpoint_supports(client, fake_server):
    eid = client.post("/api/endpoints", json=endpoint_body(base_url=fake_server.base_url)).json()["id"]
    r = client.post(f"/api/endpoints/{eid}/probe")
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["reachable"] and result["chat_works"] and result["stream_works"]
    assert result["context_window"] == 32768 and result["tokenize_works"]
    dead = client.post("/api/endpoints", json=endpoint_body(name="dead", base_url="http://127.0.0.1:9")).json()["id"]
    r = client.post(f"/api/endpoints/{dead}/probe")
    assert r.status_code == 200 and r.json()["result"]["reachable"] is False and r.json()["result"]["errors"]
