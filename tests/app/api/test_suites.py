"""Suites over the API: immutable versions by content hash, questions paginated, delete only if unused."""

from __future__ import annotations

import json

from tests.app.factories import suite_body


def test_store_returns_the_same_version_for_identical_content(client):
    body = suite_body()
    first = client.post("/api/suites", json=body)
    assert first.status_code == 201, first.text
    again = client.post("/api/suites", json=body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["created"] is True and again.json()["created"] is False
    assert client.get("/api/suites").json()["count"] == 1


def test_changed_content_is_a_new_version_of_the_same_name(client):
    v1 = client.post("/api/suites", json=suite_body()).json()
    v2 = client.post("/api/suites", json=suite_body(salt=" Changed.")).json()
    other = client.post("/api/suites", json=suite_body(name="other")).json()
    assert (v1["version"], v2["version"], other["version"]) == (1, 2, 1)
    assert v1["content_hash"] != v2["content_hash"]
    listed = client.get("/api/suites", params={"name": "mini"}).json()
    assert [s["version"] for s in listed["data"]] == [1, 2] and listed["count"] == 2


def test_get_has_counts_and_the_stored_suite_is_exact(client, settings):
    from app import crud
    from app.db import make_engine, session_scope
    from evals.domain import Suite

    body = suite_body(n_questions=4)
    created = client.post("/api/suites", json=body).json()
    got = client.get(f"/api/suites/{created['id']}").json()
    expected_chars = sum(len(d["text"]) for d in body["documents"])
    assert (got["n_documents"], got["n_questions"], got["n_chars"], got["n_runs"]) == (4, 4, expected_chars, 0)
    assert got["default_scorers"] == ["exact_match"]
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        loaded = crud.load_suite(s, record=crud.get_suite(s, suite_id=created["id"]))
    engine.dispose()
    assert loaded == Suite.model_validate(body)
    assert loaded.content_hash == created["content_hash"] == Suite.model_validate(body).content_hash


def test_questions_are_paginated_in_suite_order(client):
    sid = client.post("/api/suites", json=suite_body(n_questions=7)).json()["id"]
    page = client.get(f"/api/suites/{sid}/questions", params={"offset": 2, "limit": 3}).json()
    assert page["count"] == 7
    assert [q["id"] for q in page["data"]] == ["q2", "q3", "q4"]
    assert [q["position"] for q in page["data"]] == [2, 3, 4]
    assert page["data"][0]["answers"] == ["1002"] and page["data"][0]["evidence"] == [
        {"doc_id": "d2", "start": None, "end": None}]
    assert client.get(f"/api/suites/{sid}/questions", params={"limit": 0}).status_code == 422


def test_invalid_suite_names_the_field(client):
    body = suite_body()
    body["questions"][1]["evidence"] = [{"doc_id": "d0", "start": 5}]
    r = client.post("/api/suites", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "questions[1].evidence[0]"
    body = suite_body()
    del body["questions"][0]["question"]
    r = client.post("/api/suites", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "questions[0].question"


def test_malformed_json_is_422_not_500(client):
    r = client.post("/api/suites", content=b'{"name": "x", "questions": [', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]["message"]


def test_delete_unused_suite_and_unknown_ids(client):
    sid = client.post("/api/suites", json=suite_body()).json()["id"]
    assert client.delete(f"/api/suites/{sid}").status_code == 204
    assert client.get(f"/api/suites/{sid}").status_code == 404
    assert client.get(f"/api/suites/{sid}/questions").status_code == 404
    r = client.delete("/api/suites/12345")
    assert r.status_code == 404 and r.json()["error"] == {"message": "suite 12345 not found", "field": "suite_id"}


def test_oversize_body_is_413(database_url):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(database_url=database_url, execution="none", max_upload_bytes=2000)
    body = json.dumps(suite_body(n_questions=10)).encode()
    assert len(body) > 2000
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/suites", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert "error" in r.json()

        def chunks():  # no content-length: the limit applies while the body streams in
            for i in range(0, len(body), 500):
                yield body[i:i + 500]

        r = c.post("/api/suites", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = c.post("/api/suites/upload", files={"file": ("big.json", body, "application/json")})
        assert r.status_code == 413
        assert c.get("/api/suites").json()["count"] == 0


YAML_SUITE = """name: uploaded
documents:
  - id: d0
    text: The magic number of oslo is 42.
questions:
  - id: q0
    question: What is the magic number of oslo?
    answers: ["42"]
"""


def test_upload_yaml_json_and_jsonl_files(client):
    r = client.post("/api/suites/upload", files={"file": ("mine.yaml", YAML_SUITE.encode(), "application/yaml")})
    assert r.status_code == 201, r.text
    stored = r.json()
    assert (stored["name"], stored["n_documents"], stored["n_questions"]) == ("uploaded", 1, 1)
    again = client.post("/api/suites/upload", files={"file": ("copy.yaml", YAML_SUITE.encode(), "text/plain")})
    assert again.status_code == 200 and again.json()["id"] == stored["id"]
    body = suite_body(name="from-json")
    r = client.post("/api/suites/upload", files={"file": ("s.json", json.dumps(body).encode(), "application/json")})
    assert r.status_code == 201
    assert client.post("/api/suites", json=body).json()["id"] == r.json()["id"]  # same content, same version
    lines = [{"type": "document", "id": "d0", "text": "The magic number of oslo is 42."},
             {"type": "question", "id": "q0", "question": "What is the magic number of oslo?", "answers": ["42"]}]
    jsonl = "\n".join(json.dumps(x) for x in lines).encode()
    r = client.post("/api/suites/upload", files={"file": ("lines.jsonl", jsonl, "application/x-ndjson")})
    assert r.status_code == 201 and r.json()["name"] == "lines"  # named after the file


def test_a_bad_suite_file_names_the_file_line_and_field(client):
    broken = YAML_SUITE + "  - id: q1\n    answers: [x]\n"
    r = client.post("/api/suites/upload", files={"file": ("mine.yaml", broken.encode(), "application/yaml")})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["source"] == "mine.yaml" and error["line"] == 9 and error["field"] == "questions[1].question"
    assert error["message"].startswith("mine.yaml, line 9, field 'questions[1].question'")
    r = client.post("/api/suites/upload", files={"file": ("bad.json", b'{"name": "x",\n "questions": [', "x")})
    assert r.status_code == 422 and r.json()["error"]["line"] == 2 and r.json()["error"]["source"] == "bad.json"
    r = client.post("/api/suites/upload", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 422 and "extension" in r.json()["error"]["message"]
    r = client.post("/api/suites/upload", files={"file": ("latin.yaml", "name: caf\xe9".encode("latin-1"), "x")})
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"]
    r = client.post("/api/suites/upload", data={"other": "x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"
    assert client.get("/api/suites").json()["count"] == 0


def test_a_new_suite_is_kept_so_its_first_run_reads_no_documents_back(client, monkeypatch):
    from app import crud

    created = client.post("/api/suites", json=suite_body(salt=" Kept.")).json()
    endpoint = client.post("/api/endpoints", json={"name": "kept", "base_url": "http://127.0.0.1:9/v1",
                                                   "model": "m"}).json()
    reads = []
    real = crud.load_suite
    monkeypatch.setattr(crud, "load_suite", lambda *a, **k: reads.append(1) or real(*a, **k))
    r = client.post("/api/runs/estimate", json={"suite_id": created["id"], "endpoint_ids": [endpoint["id"]],
                                                "strategies": [{"name": "long_context"}]})
    assert r.status_code == 200, r.text
    assert reads == []
