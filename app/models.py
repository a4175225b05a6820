"""Tables. Request and response shapes live in ``app/schemas.py``.

One table per concept; a case's large fields (prompt, answer, reasoning, retrieved chunks, calls) sit
in ``case_detail`` so list and statistics queries never load them. An endpoint's key sits in
``endpoint_key`` so no query that lists endpoints can return it. Column lengths come from
:mod:`evals.limits`, the same numbers the API validates with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from evals import limits


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored datetime is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(nullable: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_type=sa.JSON, nullable=nullable)


def _ts(nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=True)
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    completed_with_errors = "completed_with_errors"  # some cases errored; the run's error says which
    failed = "failed"  # no case got an answer, or cases are missing (resume the run)
    cancelled = "cancelled"


ACTIVE_STATUSES = (RunStatus.queued.value, RunStatus.running.value)


# ------------------------------------------------------------------------------------------- endpoint
class EndpointRecord(SQLModel, table=True):
    __tablename__ = "endpoint"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=limits.ENDPOINT_NAME_MAX, unique=True, index=True)
    base_url: str
    model: str
    config: dict[str, Any] = _json()  # Endpoint fields other than name, base_url, model and api_key
    # the last probe: {"result": ProbeResult, "probed_at": iso time, "applied": {field: value it set}}
    probe: dict[str, Any] | None = _json(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class EndpointKey(SQLModel, table=True):
    __tablename__ = "endpoint_key"

    endpoint_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("endpoint.id", ondelete="CASCADE"), primary_key=True)
    )
    api_key: str
    # the endpoint's base_url when the key was stored: the key is handed out for that URL only
    base_url: str | None = None


# ---------------------------------------------------------------------------------------------- suite
class SuiteRecord(SQLModel, table=True):
    __tablename__ = "suite"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_suite_name_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=limits.SUITE_NAME_MAX, index=True)
    version: int = 1
    content_hash: str = Field(max_length=64, unique=True)
    description: str = ""
    default_scorers: list[str] = _json()
    meta: dict[str, Any] = _json()
    n_documents: int = 0
    n_questions: int = 0
    n_chars: int = 0
    created_at: datetime = _ts()


class DocumentRecord(SQLModel, table=True):
    __tablename__ = "suite_document"
    __table_args__ = (sa.UniqueConstraint("suite_id", "position", name="uq_document_position"),)

    id: int | None = Field(default=None, primary_key=True)
    suite_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("suite.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    doc_id: str = Field(max_length=limits.ITEM_ID_MAX)
    body: dict[str, Any] = _json()  # Document.model_dump(mode="json")


class QuestionRecord(SQLModel, table=True):
    __tablename__ = "suite_question"
    __table_args__ = (sa.UniqueConstraint("suite_id", "position", name="uq_question_position"),)

    id: int | None = Field(default=None, primary_key=True)
    suite_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("suite.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    question_id: str = Field(max_length=limits.ITEM_ID_MAX)
    body: dict[str, Any] = _json()  # Question.model_dump(mode="json")


# ------------------------------------------------------------------------------------------------ run
class RunRecord(SQLModel, table=True):
    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=limits.RUN_NAME_MAX)
    suite_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("suite.id", ondelete="RESTRICT"), nullable=False,
                            index=True)
    )
    spec: dict[str, Any] = _json()  # RunSpec.model_dump(mode="json"): never holds a key
    spec_hash: str = Field(max_length=64, index=True)
    status: str = Field(default=RunStatus.queued.value, max_length=32, index=True)
    attempt: int = 1  # bumped by every resume; names the run's workflow
    total_cases: int = 0
    rerun_of: int | None = None
    error: str | None = None
    tags: list[str] | None = _json(nullable=True)
    notes: str | None = Field(default=None, sa_type=sa.Text)
    checks: list[str] | None = _json(nullable=True)  # CI checks (evals.checks syntax), judged when it ends
    baseline_run_id: int | None = None  # the run that ``-vs-baseline`` checks compare with
    created_at: datetime = _ts()
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)


class CaseRecord(SQLModel, table=True):
    """The light part of a case: everything filters and statistics need."""

    __tablename__ = "case"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "case_id", name="uq_case_run_case"),
        sa.Index("ix_case_run_position", "run_id", "position"),
        sa.Index("ix_case_run_strategy", "run_id", "strategy"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False)
    )
    case_id: str = Field(max_length=64)
    position: int = 0  # index in the run's plan
    question_id: str = Field(max_length=limits.ITEM_ID_MAX)
    endpoint: str = Field(max_length=limits.ENDPOINT_NAME_MAX)
    strategy: str = Field(max_length=limits.STRATEGY_KEY_MAX)
    strategy_name: str = Field(max_length=limits.STRATEGY_NAME_MAX)
    outcome: str = Field(max_length=20)
    error_class: str | None = Field(default=None, max_length=limits.ERROR_CLASS_MAX)
    error_message: str | None = None
    scores: dict[str, Any] = _json()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated_prompt_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    context_tokens: int | None = None
    depth: float | None = None
    route: str | None = Field(default=None, max_length=limits.ROUTE_MAX)
    n_calls: int = 0
    from_cache: bool = False
    finished_at: datetime = _ts()


class CaseDetailRecord(SQLModel, table=True):
    """The large part of a case, read only when one case or an export is asked for."""

    __tablename__ = "case_detail"

    case_pk: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("case.id", ondelete="CASCADE"), primary_key=True)
    )
    prompt: list[dict[str, Any]] = _json()
    answer: str = Field(default="", sa_type=sa.Text)
    reasoning: str = Field(default="", sa_type=sa.Text)
    retrieved: list[dict[str, Any]] = _json()
    calls: list[dict[str, Any]] = _json()
    extra: dict[str, Any] = _json()  # steps, truncation, metadata


class RunViewRecord(SQLModel, table=True):
    """A finished run's summary or report data as the JSON the service sends, computed once (when the
    run finishes, or at its first view) instead of at every view. ``state`` is the run's attempt, status
    and finish time when it was computed: a view whose state is no longer the run's is stale."""

    __tablename__ = "run_view"

    run_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(primary_key=True, max_length=64)  # what the view is: kind, parameters, code version
    state: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = _ts()


class PromptBlob(SQLModel, table=True):
    """A long message text (a rendered corpus, say) stored once per run by its sha256; case details
    refer to it (``content_parts``), so a case costs the same bytes at 4k and at 1M tokens."""

    __tablename__ = "prompt_blob"

    run_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    )
    sha256: str = Field(max_length=64, primary_key=True)
    text: str = Field(sa_type=sa.Text)


# ------------------------------------------------------------------------------------------ executors
class ExecutorRecord(SQLModel, table=True):
    """A process that executes runs (``serve --execution inprocess`` or ``worker``), with its heartbeat."""

    __tablename__ = "executor"

    executor_id: str = Field(primary_key=True, max_length=200)
    host: str = Field(default="", max_length=255)
    pid: int = 0
    started_at: datetime = _ts()
    last_seen: datetime = _ts()
    stopped: bool = False  # stopped cleanly: its unfinished work is recovered by the others at once


# -------------------------------------------------------------------------------------- cache, tokens
class CachedResponse(SQLModel, table=True):
    """A model response keyed by the exact request (the engine builds the key)."""

    __tablename__ = "response_cache"

    key: str = Field(primary_key=True, max_length=128)
    value: dict[str, Any] = _json()
    created_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """A bearer token, stored as its sha256; the token itself is shown once at creation."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=limits.TOKEN_NAME_MAX, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = _ts()
    last_used_at: datetime | None = _ts(nullable=True)
