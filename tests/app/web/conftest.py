"""Fixtures of the dashboard tests: a migrated SQLite database per test and the app on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.db import make_engine, run_migrations
from app.execution.dispatch import migrate_system_database
from app.settings import Settings


def migrate(database_url: str) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    engine.dispose()
    migrate_system_database(Settings(database_url=database_url).dbos_system_database_url)


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("web-template")
    migrate(f"sqlite:///{folder / 'ctxeval.db'}")
    return folder


@pytest.fixture
def database_url(web_template: Path, tmp_path: Path) -> str:
    folder = tmp_path / "db"
    folder.mkdir()
    for f in web_template.glob("*.db"):
        shutil.copy(f, folder / f.name)
    return f"sqlite:///{folder / 'ctxeval.db'}"


@pytest.fixture
def db(database_url: str) -> Iterator[Any]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def make_client(database_url: str, **settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from app.main import create_app

    values = {"database_url": database_url, "execution": "none", "host": "127.0.0.1", "auth": "off", **settings}
    return TestClient(create_app(Settings(**values)), follow_redirects=False)


@pytest.fixture
def client(database_url: str) -> Iterator[Any]:
    with make_client(database_url) as c:
        yield c
