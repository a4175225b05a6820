"""Health: open to all, says what the service is, and 503 when the database does not answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def test_health_describes_the_service(client, database_url):
    body = client.get("/api/health").json()
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert body == {"status": "ok", "database": kind, "execution": "none", "auth_required": False,
                    "version": body["version"], "workers": []}  # this service executes nothing


def test_health_is_503_when_the_database_is_unreachable():
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", execution="none", auth="on")
    with TestClient(create_app(settings)) as c:  # the service starts without its database
        r = c.get("/api/health")
        assert r.status_code == 503 and "database unreachable" in r.json()["error"]["message"]
        assert c.get("/api/suites").status_code == 401
