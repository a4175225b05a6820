"""Settings: environment names, auth modes, the DBOS system database, refused defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings, is_loopback


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/ctx")
    monkeypatch.setenv("CTXEVAL_EXECUTION", "none")
    monkeypatch.setenv("CTXEVAL_PORT", "9000")
    s = Settings()
    assert (s.database_url, s.execution, s.port) == ("postgresql://u:pw@db/ctx", "none", 9000)
    monkeypatch.setenv("CTXEVAL_DATABASE_URL", "sqlite:///x.db")
    assert Settings().database_url == "sqlite:///x.db"


def test_default_database_is_a_sqlite_file_with_the_system_database_next_to_it():
    s = Settings(_env_file=None)
    assert s.database_url == "sqlite:///./.ctxeval/ctxeval.db"
    assert s.dbos_system_database_url == "sqlite:///.ctxeval/ctxeval-system.db"
    pg = Settings(database_url="postgresql+psycopg://u:pw@h:5433/ctx")
    assert pg.dbos_system_database_url == "postgresql://u:pw@h:5433/ctx"
    assert Settings(database_url="sqlite:///a.db", system_database_url="sqlite:///b.db").dbos_system_database_url \
        == "sqlite:///b.db"


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("0.0.0.0", False), ("10.0.0.5", False), ("example.org", False)])
def test_auth_auto_follows_the_listening_address(host, loopback):
    assert is_loopback(host) is loopback
    assert Settings(host=host, auth="auto").auth_required is (not loopback)
    assert Settings(host=host, auth="on").auth_required is True
    assert Settings(host=host, auth="off").auth_required is False


def test_production_refuses_example_passwords_and_open_auth():
    with pytest.raises(ValidationError, match="example value"):
        Settings(environment="production", database_url="postgresql://ctx:changethis@db/ctx")
    with pytest.raises(ValidationError, match="auth 'off'"):
        Settings(environment="production", host="0.0.0.0", auth="off")
    ok = Settings(environment="production", database_url="postgresql://ctx:s3cr3t-Long@db/ctx", host="0.0.0.0")
    assert ok.auth_required
    assert Settings(environment="development", database_url="postgresql://ctx:changethis@db/ctx")
