"""Request and response shapes of the JSON API (the tables are in ``app/models.py``).

Endpoint shapes are derived from the engine's :class:`evals.domain.Endpoint`, so a field added there
appears in the API without a second definition. ``api_key`` is write-only: accepted on create and
update, never part of a response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from evals import Endpoint, ProbeResult, RunSpec, StrategySpec

ENDPOINT_EXAMPLE: dict[str, Any] = {
    "name": "local-vllm",
    "base_url": "http://127.0.0.1:8001/v1",
    "model": "Qwen/Qwen2.5-7B-Instruct",
    "api_key": "sk-local",
    "context_window": 32768,
    "concurrency": 8,
    "price_input": 0.1,
    "price_output": 0.4,
}

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]

_ENDPOINT_FIELDS = {name: f for name, f in Endpoint.model_fields.items() if name != "api_key"}


class ErrorDetail(BaseModel):
    message: str
    field: str | None = None
    line: int | None = None
    source: str | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"message", "field", "line"?}}``."""

    error: ErrorDetail


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request body cannot be read (e.g. not UTF-8)"},
    401: {"model": ErrorBody, "description": "A bearer token is required, or the one given is not valid"},
    413: {"model": ErrorBody, "description": "The request body is over the size limit"},
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Not found"},
    409: {"model": ErrorBody, "description": "Conflicts with stored state"},
    422: {"model": ErrorBody, "description": "Invalid input; names the field (and line, for files)"},
}


# ------------------------------------------------------------------------------------------ endpoints
class EndpointCreate(Endpoint):
    """An endpoint to store. ``api_key`` is write-only: stored apart and never returned."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ENDPOINT_EXAMPLE]})


EndpointUpdate: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "EndpointUpdate",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [{"concurrency": 2}]}),
    __doc__="Fields to change. ``api_key: null`` removes the key; leaving it out keeps it.",
    api_key=(SecretStr | None, None),
    **{name: (f.annotation | None, None) for name, f in _ENDPOINT_FIELDS.items()},  # type: ignore[operator]
)

EndpointPublic: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "EndpointPublic",
    __doc__="A stored endpoint. Its key is never returned; ``has_api_key`` says whether one is set.",
    id=(int, ...),
    has_api_key=(bool, ...),
    created_at=(datetime, ...),
    updated_at=(datetime, ...),
    **{name: (f.annotation, f) for name, f in _ENDPOINT_FIELDS.items()},
)


class EndpointsPublic(BaseModel):
    data: list[EndpointPublic]  # type: ignore[valid-type]
    count: int


class ProbePublic(BaseModel):
    endpoint_id: int
    result: ProbeResult


# --------------------------------------------------------------------------------------------- suites
class SuitePublic(BaseModel):
    id: int
    name: str
    version: int = Field(description="1 for the first content uploaded under this name, then 2, 3…")
    content_hash: str
    description: str
    default_scorers: list[str]
    n_documents: int
    n_questions: int
    n_chars: int = Field(description="characters of all document texts")
    n_runs: int = 0
    created_at: datetime
    created: bool = Field(default=False, description="true when this request stored new content")


class SuitesPublic(BaseModel):
    data: list[SuitePublic]
    count: int


class QuestionPublic(BaseModel):
    position: int
    id: str
    question: str
    answers: list[str]
    evidence: list[dict[str, Any]]
    doc_ids: list[str] | None
    metadata: dict[str, Any]


class QuestionsPublic(BaseModel):
    data: list[QuestionPublic]
    count: int


# ----------------------------------------------------------------------------------------------- runs
class RunEmbeddings(BaseModel):
    """Where dense and hybrid retrieval get embeddings: ``endpoint`` = ``/v1/embeddings`` of the stored
    endpoint ``endpoint_id`` (else of the first tested endpoint with an ``embedding_model``, else of the
    first tested endpoint); ``local`` = the model shipped with the package; ``auto`` = ``endpoint`` when
    an endpoint or an ``embedding_model`` is set, else ``local``."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["auto", "endpoint", "local"] = "auto"
    endpoint_id: DbId | None = None
    model: str | None = Field(default=None, max_length=200)
    batch_size: int = Field(default=64, ge=1, le=4096)


class RunCreate(BaseModel):
    """A matrix: one suite × one or more endpoints × one or more strategies, scored by ``scorers``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "suite_id": 1,
        "endpoint_ids": [1],
        "strategies": [{"name": "long_context"}, {"name": "rag", "params": {"k": 5}}],
        "scorers": ["exact_match"],
    }]})

    suite_id: DbId
    endpoint_ids: list[DbId] = Field(min_length=1, max_length=100)
    strategies: list[StrategySpec] = Field(min_length=1, max_length=100)
    scorers: list[str] | None = Field(default=None, description="default: the suite's default scorers")
    system_prompt: str | None = None
    judge_endpoint_id: DbId | None = Field(default=None, description="the stored endpoint that grades "
                                                                      "llm_judge scorers")
    embeddings: RunEmbeddings | None = None
    name: str | None = Field(default=None, max_length=200)


class RunEstimate(BaseModel):
    cases: int
    prompt_tokens: int = Field(description="input tokens of all cases, estimated with the local tokenizer")
    completion_tokens: int = Field(description="upper bound: each case's max_output_tokens")
    cost_usd: float = Field(description="at the endpoints' prices, all input uncached")
    by_strategy: dict[str, dict[str, float]]
    assumptions: list[str]


class RunProgress(BaseModel):
    done: int
    total: int
    fraction: float
    outcomes: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    elapsed_s: float | None = None
    eta_s: float | None = Field(default=None, description="seconds left at the rate of this attempt")


class RunPublic(BaseModel):
    id: int
    name: str | None
    suite_id: int
    status: Literal["queued", "running", "completed", "completed_with_errors", "failed", "cancelled"]
    attempt: int
    total_cases: int
    rerun_of: int | None
    error: str | None
    spec_hash: str
    spec: RunSpec
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: RunProgress


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int


# ---------------------------------------------------------------------------------------------- cases
class CasePublic(BaseModel):
    """A case's light fields."""

    case_id: str
    position: int
    question_id: str
    endpoint: str
    strategy: str
    strategy_name: str
    outcome: str
    error_class: str | None
    error_message: str | None
    scores: dict[str, float | None]
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    latency_s: float | None
    ttft_s: float | None
    context_tokens: int | None
    depth: float | None
    route: str | None
    from_cache: bool
    finished_at: datetime


class CasesPublic(BaseModel):
    data: list[CasePublic]
    count: int


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class HealthPublic(BaseModel):
    status: Literal["ok"]
    database: str
    execution: str
    auth_required: bool
    version: str
