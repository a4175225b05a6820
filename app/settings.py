"""The service's one configuration object, read from the environment (prefix ``CTXEVAL_``).

``DATABASE_URL`` is accepted as well as ``CTXEVAL_DATABASE_URL``. Every command-line option of
``ctxeval serve`` / ``worker`` maps onto a field here.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite:///./.ctxeval/ctxeval.db"
# Passwords that ship in examples (compose files, docs) and must never reach production.
DEFAULT_SECRETS = frozenset({"changethis", "postgres", "password", "secret", "ctxeval"})


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTXEVAL_", extra="ignore", validate_default=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("CTXEVAL_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL of the app database: sqlite:///path or postgresql://user:pw@host/db",
    )
    system_database_url: str | None = Field(
        default=None,
        description="DBOS system database; default: a SQLite file next to a SQLite app database, "
        "or the app database itself (schema 'dbos') on PostgreSQL",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    auth: Literal["auto", "on", "off"] = Field(
        default="auto", description="auto: required unless the service listens on loopback only"
    )
    execution: Literal["inprocess", "none"] = Field(
        default="inprocess", description="inprocess: this process executes queued cases; none: workers do"
    )
    executor_id: str = Field(
        default="local",
        description="DBOS executor id. Every live process needs its own; a restarted process with the "
        "same id recovers the work its predecessor had in flight at once (others do once its heartbeat "
        "is stale).",
    )
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    queue_polling_interval_s: float = Field(default=0.5, gt=0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0, description="how often an executor says it is alive")
    worker_timeout_s: float = Field(
        default=30.0, gt=0, description="an executor silent this long is dead: the others recover its "
        "unfinished cases and free its concurrency slots")
    case_writer: Literal["process", "thread"] = Field(
        default="process", description="where an executor commits finished cases and reads the response cache: a "
        "child process (the database driver's work off the executing loop's interpreter) or a thread; an "
        "in-memory SQLite database always uses a thread")
    engine_cache_size: int = Field(default=8, ge=1, description="engines kept per process (one per run)")
    index_cache_dir: Path | None = Field(
        default=None, description="where retrieval indexes and corpus token counts are kept for later runs and "
        "other processes; default: an 'indexes' folder beside a SQLite database, else ~/.cache/ctxeval/indexes")
    allowed_hosts: str = Field(
        default="", description="comma-separated Host names accepted besides the bound address, localhost, "
        "127.0.0.1 and ::1 (a guard against DNS rebinding); '*' accepts any")
    trusted_origins: str = Field(
        default="", description="comma-separated origins (https://evals.example.com) whose browser pages may "
        "send state-changing requests, for a proxy that changes the Host header")

    @model_validator(mode="after")
    def _no_default_secrets(self) -> Settings:
        if self.environment == "development":
            return self
        for url in (self.database_url, self.system_database_url):
            if not url or url.startswith("sqlite"):
                continue
            password = make_url(url).password
            if password is not None and str(password) in DEFAULT_SECRETS:
                raise ValueError(
                    f"the database password '{password}' is an example value; set a real one "
                    "(environment is 'production')"
                )
        if self.auth == "off" and not is_loopback(self.host):
            raise ValueError("auth 'off' on a non-loopback host is refused in production")
        return self

    # ---------------------------------------------------------------------------------------------
    @property
    def host_names(self) -> frozenset[str] | None:
        """Host header names this service answers (lower case, no port); None: any.

        Always the loopback names and the bound address. A wildcard bind (0.0.0.0, ::) with tokens
        required answers any name (a rebinding page has no token); without tokens only the machine's
        own name is added and anything else must be listed in ``allowed_hosts``."""
        extra = {h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",") if h.strip()}
        if "*" in extra:
            return None
        names = {"localhost", "127.0.0.1", "::1", self.host.lower().strip("[]")} | extra
        if self.host.strip("[]") in ("0.0.0.0", "::", ""):
            if self.auth_required:
                return None
            import socket

            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        return frozenset(names)

    @property
    def trusted_origin_set(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/").lower() for o in self.trusted_origins.split(",") if o.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def auth_required(self) -> bool:
        if self.auth == "on":
            return True
        if self.auth == "off":
            return False
        return not is_loopback(self.host)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        database = make_url(self.database_url).database
        return Path(database) if database and database != ":memory:" else None

    @property
    def index_cache_path(self) -> Path:
        if self.index_cache_dir is not None:
            return self.index_cache_dir
        db = self.sqlite_path
        return db.parent / "indexes" if db is not None else Path.home() / ".cache" / "ctxeval" / "indexes"

    @property
    def dbos_system_database_url(self) -> str:
        """Where DBOS keeps workflows and queues."""
        if self.system_database_url:
            return self.system_database_url
        path = self.sqlite_path
        if self.is_sqlite:
            if path is None:
                raise ValueError("an in-memory SQLite app database needs an explicit system_database_url")
            return f"sqlite:///{path.with_name(path.stem + '-system' + path.suffix)}"
        url = make_url(self.database_url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)
