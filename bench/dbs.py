"""Fresh, migrated databases for the service benchmarks: SQLite files in a temporary folder, and
uniquely named PostgreSQL databases (dropped afterwards) when a server answers.

PostgreSQL: ``CTXEVAL_BENCH_PG_URL`` (else ``CTXEVAL_TEST_PG_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``) names a role allowed to create databases.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("CTXEVAL_BENCH_PG_URL") or os.environ.get(
    "CTXEVAL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_names = itertools.count()


def _admin_connect() -> Any:
    import psycopg

    url = make_url(PG_ADMIN_URL)
    return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                           dbname=url.database or "postgres", autocommit=True, connect_timeout=3)


def pg_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not (for the table)."""
    try:
        _admin_connect().close()
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)}: {first}"
    return None


def pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def migrate(database_url: str, *, system: bool = True) -> None:
    """App tables, and (``system``) DBOS's system tables, at their newest schema."""
    from app.db import make_engine, run_migrations

    engine = make_engine(database_url)
    try:
        run_migrations(engine)
    finally:
        engine.dispose()
    if system:
        from app.execution.dispatch import migrate_system_database
        from app.settings import Settings

        migrate_system_database(Settings(database_url=database_url).dbos_system_database_url)


class PgDatabases:
    """Creates databases named ``ctxeval_bench_<pid>_<n>`` (optionally from a template) and drops every
    one of them on exit."""

    def __init__(self) -> None:
        self._conn: Any = None
        self.created: list[str] = []

    def __enter__(self) -> PgDatabases:
        self._conn = _admin_connect()
        return self

    def create(self, *, template: str | None = None) -> str:
        name = f"ctxeval_bench_{os.getpid()}_{next(_names)}"
        self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        self._conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def __exit__(self, *exc: object) -> None:
        for name in list(reversed(self.created)):
            with contextlib.suppress(Exception):
                self.drop(name)
        self._conn.close()


def sqlite_template(folder: Path, *, system: bool = True) -> Path:
    """A migrated SQLite app database (and its DBOS system database) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    migrate(f"sqlite:///{folder / 'ctxeval.db'}", system=system)
    return folder


def fresh_sqlite(template: Path, folder: Path) -> str:
    """A copy of ``template``'s databases in ``folder``; returns the app database URL."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in template.glob("*.db"):
        shutil.copy(f, folder / f.name)
    return f"sqlite:///{folder / 'ctxeval.db'}"


@contextlib.contextmanager
def databases(kinds: tuple[str, ...], tmp: Path, *, system: bool = True
              ) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Per kind (``sqlite``, ``postgres``) a factory of fresh migrated databases, and the kinds that
    cannot run with the reason. The factory takes a tag and returns a database URL."""
    factories: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if "sqlite" in kinds:
            tpl = sqlite_template(tmp / "sqlite-template", system=system)
            factories["sqlite"] = lambda tag: fresh_sqlite(tpl, tmp / f"sqlite-{tag}")
        if "postgres" in kinds:
            reason = pg_unavailable()
            if reason is not None:
                unavailable["postgres"] = reason
            else:
                pg = stack.enter_context(PgDatabases())
                template = pg.create()
                migrate(pg_url(template), system=system)
                factories["postgres"] = lambda tag: pg_url(pg.create(template=template))
        yield factories, unavailable
