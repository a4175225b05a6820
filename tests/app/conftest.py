"""Fixtures of the service tests: one fresh database per test, on SQLite and on the real PostgreSQL.

PostgreSQL: a template database is created and migrated once per test session on 127.0.0.1:5432
(``CTXEVAL_TEST_PG_URL`` overrides the admin URL); each test gets its own copy of it and drops it.
When the server is unreachable the PostgreSQL variants are skipped with the reason, except under
``CI=true``, where that is a failure.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app.db import make_engine, run_migrations
from app.execution.dispatch import migrate_system_database
from app.settings import Settings

PG_ADMIN_URL = os.environ.get("CTXEVAL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_counter = itertools.count()


def _admin_connect() -> Any:
    import psycopg

    url = make_url(PG_ADMIN_URL)
    return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                           dbname=url.database or "postgres", autocommit=True, connect_timeout=3)


def pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def migrate_everything(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    engine = make_engine(database_url)
    run_migrations(engine)
    engine.dispose()
    migrate_system_database(settings.dbos_system_database_url)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        conn = _admin_connect()
    except Exception as e:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {e}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"ctxeval_tpl_{os.getpid()}"
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate_everything(pg_url(name))
        yield name
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    migrate_everything(f"sqlite:///{folder / 'ctxeval.db'}")
    return folder


@pytest.fixture
def fresh_pg_url(pg_template: str) -> Iterator[str]:
    name = f"ctxeval_t_{os.getpid()}_{next(_counter)}"
    conn = _admin_connect()
    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield pg_url(name)
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def fresh_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    folder = tmp_path / "db"
    folder.mkdir()
    for f in sqlite_template.glob("*.db"):
        shutil.copy(f, folder / f.name)
    return f"sqlite:///{folder / 'ctxeval.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database (app tables and DBOS system tables) of each kind."""
    return request.getfixturevalue("fresh_sqlite_url" if request.param == "sqlite" else "fresh_pg_url")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, execution="none", host="127.0.0.1", auth="auto")


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings)) as c:
        yield c
