"""Migrations match the tables on both databases; SQLite connections get their pragmas."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import alembic_config, make_engine, normalise_url, run_migrations


def test_migrations_create_exactly_the_tables_of_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, SQLModel.metadata) == []
            assert ctx.get_current_revision() is not None
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(database_url):
    engine = make_engine(database_url)
    try:
        command.downgrade(alembic_config(engine), "base")
        with engine.connect() as conn:
            tables = set(conn.dialect.get_table_names(conn))
        assert "case" not in tables and "run" not in tables
        run_migrations(engine)
        run_migrations(engine)  # a second upgrade is a no-op
        with engine.connect() as conn:
            assert {"case", "case_detail", "run", "suite", "endpoint", "endpoint_key", "api_token",
                    "response_cache"} <= set(conn.dialect.get_table_names(conn))
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(fresh_sqlite_url):
    engine = make_engine(fresh_sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_postgres_urls_get_psycopg3():
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
