"""Bearer tokens: required off loopback (or when on), optional on loopback, never for health."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app import crud
from app.db import make_engine, session_scope
from app.main import create_app
from app.settings import Settings


@contextmanager
def app_client(database_url: str, **kw) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url, execution="none", **kw))) as c:
        yield c


def make_token(database_url: str, name: str = "ci") -> str:
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        _, plain = crud.create_token(s, name=name)
    engine.dispose()
    return plain


@pytest.mark.parametrize("kw", [{"auth": "on"}, {"auth": "auto", "host": "0.0.0.0"}])
def test_required_mode_needs_a_valid_token(database_url, kw):
    token = make_token(database_url)
    with app_client(database_url, **kw) as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/health").json()["auth_required"] is True
        r = c.get("/api/suites")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["error"]["message"]
        assert c.get("/api/suites", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/suites", headers={"Authorization": f"Basic {token}"}).status_code == 401
        assert c.post("/api/endpoints", json={}).status_code == 401  # auth before validation
        ok = c.get("/api/suites", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


def test_optional_on_loopback_but_a_wrong_token_is_refused(database_url):
    with app_client(database_url, auth="auto", host="127.0.0.1") as c:
        assert c.get("/api/health").json()["auth_required"] is False
        assert c.get("/api/suites").status_code == 200
        assert c.get("/api/suites", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_off_needs_nothing(database_url):
    with app_client(database_url, auth="off", host="0.0.0.0") as c:
        assert c.get("/api/suites").status_code == 200


def test_tokens_are_stored_hashed_and_used_tokens_are_stamped(database_url):
    token = make_token(database_url, "alice")
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        (record,) = crud.list_tokens(s)
        assert record.token_hash == crud.hash_token(token) and token not in (record.token_hash, record.prefix)
        assert record.last_used_at is None
    with app_client(database_url, auth="on") as c:
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with session_scope(engine) as s:
        assert crud.list_tokens(s)[0].last_used_at is not None
        with pytest.raises(ValueError, match="exists"):
            crud.create_token(s, name="alice")
    engine.dispose()
