"""The service's commands of the ``ctxeval`` console script.

``serve`` (the web service), ``worker`` (executes queued cases), ``migrate`` (app and DBOS system
databases) and ``token create|list|revoke`` (bearer tokens for the API).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from typing import Any

import typer

from app.cli.root import cli

token_cli = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed; shown once).")
cli.add_typer(token_cli, name="token")


def _settings(**overrides: Any) -> Any:
    from app.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def migrate_all(settings: Any) -> None:
    """Apply the app database's migrations, then create or upgrade DBOS's system database."""
    from app.db import make_engine, run_migrations
    from app.execution.dispatch import migrate_system_database

    engine = make_engine(settings.database_url)
    try:
        run_migrations(engine)
    finally:
        engine.dispose()
    migrate_system_database(settings.dbos_system_database_url)


DbOption = typer.Option(None, "--database-url", help="app database URL (default: $DATABASE_URL or "
                                                     "sqlite:///./.ctxeval/ctxeval.db)")


@cli.command()
def migrate(database_url: str | None = DbOption) -> None:
    """Create or upgrade the app database and DBOS's system database."""
    settings = _settings(database_url=database_url)
    migrate_all(settings)
    typer.echo("migrated")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="address to listen on (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="port (default 8000)"),
    database_url: str | None = DbOption,
    execution: str | None = typer.Option(None, help="inprocess: execute runs here; none: leave them to "
                                                    "`ctxeval worker` processes"),
    auth: str | None = typer.Option(None, help="auto (required off loopback) | on | off"),
) -> None:
    """Apply migrations, then serve the API (and execute runs, unless --execution none)."""
    import uvicorn

    from app.main import create_app

    settings = _settings(host=host, port=port, database_url=database_url, execution=execution, auth=auth)
    migrate_all(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


@cli.command()
def worker(
    database_url: str | None = DbOption,
    executor_id: str | None = typer.Option(
        None, help="unique per live process; a worker restarted with the id of one that died finishes the "
                   "cases it had in flight (default: worker-<host>-<pid>)"),
) -> None:
    """Execute queued cases of every run until stopped (SIGINT/SIGTERM)."""
    settings = _settings(database_url=database_url, execution="inprocess",
                         executor_id=executor_id or os.environ.get("CTXEVAL_EXECUTOR_ID")
                         or f"worker-{socket.gethostname()}-{os.getpid()}")
    migrate_all(settings)
    asyncio.run(_work(settings))


async def _work(settings: Any) -> None:
    from app.execution import workflows as execution

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await execution.start_executor(settings)
    typer.echo(f"worker {settings.executor_id} executing queued cases", err=True)
    try:
        await stop.wait()
    finally:
        await execution.stop_executor()


@token_cli.command("create")
def token_create(name: str, database_url: str | None = DbOption) -> None:
    """Create a token named NAME and print it (only now: it is stored as a sha256)."""
    from app.db import make_engine, run_migrations, session_scope
    from app.services import tokens

    engine = make_engine(_settings(database_url=database_url).database_url)
    run_migrations(engine)
    try:
        with session_scope(engine) as session:
            _, plain = tokens.create(session, name)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(plain)


@token_cli.command("list")
def token_list(database_url: str | None = DbOption) -> None:
    """List tokens by name (never the tokens themselves)."""
    from app.db import make_engine, session_scope
    from app.services import tokens

    with session_scope(make_engine(_settings(database_url=database_url).database_url)) as session:
        for t in tokens.list_all(session):
            typer.echo(f"{t.name}\t{t.prefix}…\tcreated {t.created_at:%Y-%m-%d %H:%M}\t"
                       f"last used {t.last_used_at or 'never'}")


@token_cli.command("revoke")
def token_revoke(name: str, database_url: str | None = DbOption) -> None:
    """Delete the token named NAME."""
    from app.db import make_engine, session_scope
    from app.services import tokens

    with session_scope(make_engine(_settings(database_url=database_url).database_url)) as session:
        if not tokens.revoke(session, name):
            typer.echo(f"error: no token named '{name}'", err=True)
            raise typer.Exit(1)
    typer.echo(f"revoked {name}")
