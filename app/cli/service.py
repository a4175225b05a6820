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


# What to tell a person whose setting is refused: the option, what it takes, how to fix it.
FIXES = {
    "execution": "--execution (or $CTXEVAL_EXECUTION) takes 'inprocess' (this process executes runs) or "
                 "'none' (`ctxeval worker` processes do)",
    "port": "--port (or $CTXEVAL_PORT) takes a port number from 1 to 65535",
    "auth": "--auth (or $CTXEVAL_AUTH) takes 'auto' (required off loopback), 'on' or 'off'",
    "database_url": "--database-url (or $DATABASE_URL) takes sqlite:///path/to/file.db or "
                    "postgresql://user:password@host:5432/dbname",
    "environment": "$CTXEVAL_ENVIRONMENT takes 'development' or 'production'",
}


def config_error(message: str) -> typer.Exit:
    """Print one line (no traceback) and return the exit to raise: configuration errors exit 2."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _hidden(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from app.settings import Settings

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        value = err.get("input")
        shown = f" '{value}'" if name in FIXES and not isinstance(value, dict) else ""
        why = str(err["msg"]).removeprefix("Value error, ")
        fix = FIXES.get(name)
        raise config_error(f"{name or 'setting'}{shown} is refused: {why}" + (f"; {fix}" if fix else "")) from None
    _check_database_url(settings.database_url)
    return settings


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise config_error(f"'{_hidden(url)}' is not a database URL; {FIXES['database_url']}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise config_error(f"database '{_hidden(url)}' is not supported; {FIXES['database_url']}")


def migrate_all(settings: Any) -> None:
    """Apply the app database's migrations, then create or upgrade DBOS's system database. A database
    that cannot be opened is a one-line configuration error (exit 2) naming the URL, without its
    password, and the likely fix."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import make_engine, run_migrations
    from app.execution.dispatch import migrate_system_database

    try:
        engine = make_engine(settings.database_url)
        try:
            with engine.connect():
                pass
            run_migrations(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as e:
        raise config_error(_database_problem(settings.database_url, e)) from None
    try:
        migrate_system_database(settings.dbos_system_database_url)
    except Exception as e:
        raise config_error(_database_problem(settings.dbos_system_database_url, e, what="system database")) from None


def _database_problem(url: str, e: BaseException, *, what: str = "database") -> str:
    orig = getattr(e, "orig", None) or e
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    hint = FIXES["database_url"]
    low = first.lower()
    if "does not exist" in low and "database" in low:
        hint = "create it (e.g. `createdb NAME`) or point --database-url at one that exists"
    elif "password" in low or "authentication" in low or "role" in low:
        hint = "check the user and password in --database-url (or $DATABASE_URL)"
    elif "connection refused" in low or "could not connect" in low or "timeout" in low:
        hint = "is PostgreSQL running and reachable there? check the host and port in --database-url"
    elif "unable to open" in low or "readonly" in low or "read-only" in low:
        hint = "the SQLite file's folder must exist and be writable; check the path in --database-url"
    return f"cannot open the {what} {_hidden(url)}: {first}; {hint}"


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as e:
            why = "is in use" if e.errno in (98, 48) else f"cannot be opened ({e.strerror})"
            raise config_error(f"port {port} on {host} {why}; pick another with --port (or $CTXEVAL_PORT), "
                               "or stop the process that holds it") from None


def startup_lines(settings: Any) -> list[str]:
    """What ``ctxeval serve`` prints: where the dashboard is, and the mode it runs in."""
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in shown_host and not shown_host.startswith("["):
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{settings.port}"
    database = (f"SQLite {settings.sqlite_path}" if settings.is_sqlite else f"PostgreSQL {_hidden(settings.database_url)}")
    execution = ("runs execute in this process" if settings.execution == "inprocess" else
                 "runs execute in `ctxeval worker` processes (none here)")
    lines = [f"ctxeval dashboard: {url}/   API docs: {url}/docs"]
    if settings.host in ("0.0.0.0", "::"):
        lines.append(f"listening on every interface ({settings.host}), port {settings.port}")
    lines.append(f"mode: {database} · {execution} · sign-in {'required' if settings.auth_required else 'off'}")
    return lines


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
    _check_port(settings.host, settings.port)
    migrate_all(settings)
    if settings.execution == "inprocess":
        _check_executor_allowed(settings)
    app = create_app(settings)
    for line in startup_lines(settings):
        typer.echo(line)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


@cli.command()
def worker(
    database_url: str | None = DbOption,
    executor_id: str | None = typer.Option(
        None, help="unique per live process (default: worker-<host>-<pid>); what a dead worker had in "
                   "flight is finished by the live ones once its heartbeat is stale, or at once by a worker "
                   "restarted with its id"),
) -> None:
    """Execute queued cases of every run until stopped (SIGINT/SIGTERM)."""
    settings = _settings(database_url=database_url, execution="inprocess",
                         executor_id=executor_id or os.environ.get("CTXEVAL_EXECUTOR_ID")
                         or f"worker-{socket.gethostname()}-{os.getpid()}")
    migrate_all(settings)
    asyncio.run(_work(settings))


def _check_executor_allowed(settings: Any) -> None:
    """On SQLite, a second executing process is refused with one line (see app/execution/workers.py)."""
    from app.execution.workers import ExecutorRefused, SqliteExecutorLock

    if settings.sqlite_path is None:
        return
    lock = SqliteExecutorLock(settings.sqlite_path.resolve(), settings.executor_id)
    try:
        lock.acquire()
    except ExecutorRefused as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    lock.release()


async def _work(settings: Any) -> None:
    from app.execution import workflows as execution
    from app.execution.workers import ExecutorRefused

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await execution.start_executor(settings)
    except ExecutorRefused as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
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
