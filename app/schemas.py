"""Request and response shapes of the JSON API (the tables are in ``app/models.py``).

Endpoint shapes are derived from the engine's :class:`evals.domain.Endpoint`, so a field added there
appears in the API without a second definition. ``api_key`` is write-only: accepted on create and
update, never part of a response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from evals import CheckResult, Endpoint, ProbeResult, RunPairComparison, RunSpec, StrategySpec

ENDPOINT_EXAMPLE: dict[str, Any] = {
    "name": "local-vllm",
    "base_url": "http://127.0.0.1:8001",
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
    __doc__="Fields to change. ``api_key: null`` removes the key; leaving it out keeps it, unless "
            "``base_url`` changes: a key is only sent to the base URL it was entered with, so a new "
            "``base_url`` without an ``api_key`` removes the stored key.",
    api_key=(SecretStr | None, None),
    **{name: (f.annotation | None, None) for name, f in _ENDPOINT_FIELDS.items()},  # type: ignore[operator]
)

class EndpointProbe(BaseModel):
    """The endpoint's last probe, kept on the endpoint."""

    result: ProbeResult = Field(description="what the probe found")
    probed_at: datetime = Field(description="when it ran (UTC)")
    applied: dict[str, Any] = Field(default_factory=dict, description="endpoint fields whose value comes "
                                    "from a probe (a field the user sets is never overwritten)")
    kept: dict[str, Any] = Field(default_factory=dict, description="findings not applied because the user "
                                 "set the field: the user's value")
    unreachable: str | None = Field(default=None, description="set when no OpenAI-compatible check "
                                    "succeeded: why, with the likely cause")


EndpointPublic: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "EndpointPublic",
    __doc__="A stored endpoint. Its key is never returned; ``has_api_key`` says whether one is set.",
    id=(int, ...),
    has_api_key=(bool, ...),
    api_key_cleared=(bool, Field(default=False, description="true on the answer to a change of base_url "
                                 "that removed the stored key (a key is only sent to the URL it was "
                                 "entered with); enter the key again for the new URL")),
    created_at=(datetime, ...),
    updated_at=(datetime, ...),
    probe=(EndpointProbe | None, Field(default=None, description="the last probe's findings, if any")),
    **{name: (f.annotation, f) for name, f in _ENDPOINT_FIELDS.items()},
)


class EndpointsPublic(BaseModel):
    data: list[EndpointPublic]  # type: ignore[valid-type]
    count: int


class ProbePublic(BaseModel):
    endpoint_id: int = Field(description="the endpoint probed")
    result: ProbeResult = Field(description="what the probe found")
    unreachable: str | None = Field(default=None, description="set when no OpenAI-compatible check "
                                    "succeeded: why, with the likely cause")
    applied: dict[str, Any] = Field(default_factory=dict, description="endpoint fields now set from "
                                    "the probe's findings")


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
    data: list[QuestionPublic] = Field(description="this page of questions, in suite order")
    count: int = Field(description="questions in the suite (matching the search, when one is given)")


class DocumentPublic(BaseModel):
    position: int = Field(description="index of the document in the suite")
    id: str = Field(description="the document's id, cited by questions' evidence")
    title: str = Field(description="its title (may be empty)")
    n_chars: int = Field(description="characters of its text")
    preview: str = Field(description="the start of its text")
    metadata: dict[str, Any] = Field(description="free-form fields of the document")


class DocumentsPublic(BaseModel):
    data: list[DocumentPublic] = Field(description="this page of documents, in suite order")
    count: int = Field(description="documents in the suite (matching the search, when one is given)")


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
    preset: str | None = Field(default=None, max_length=64, description="prompt preset for every question "
                               "(ruler, kamradt, litm, longbench, longbench_v2, longbench_v2_cot, infinitebench, "
                               "ctxeval); default: the suite's")
    judge_endpoint_id: DbId | None = Field(default=None, description="the stored endpoint that grades "
                                                                      "llm_judge scorers")
    embeddings: RunEmbeddings | None = None
    name: str | None = Field(default=None, max_length=200)
    checks: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=100,
        description="CI checks judged when the run ends, e.g. `rag:f1>=0.7`, `rag:f1.lower>=0.6`, "
                    "`rag-vs-long_context:f1>=-0.02`, `rag-vs-baseline:f1>=-0.02` (see docs/ci.md)",
        examples=[["rag:exact_match>=0.7", "rag-vs-long_context:exact_match>=-0.02"]])
    baseline_run_id: DbId | None = Field(default=None, description="the stored run that `-vs-baseline` "
                                                                    "checks compare with")


class RunImport(BaseModel):
    """A finished ``ctxeval run`` stored as a run of the service: its suite (stored first with
    ``POST /api/suites``), the spec the CLI built, and its results file as it was written, one case per
    line. Cases are checked against the spec's plan; a case the plan does not have is refused."""

    model_config = ConfigDict(extra="forbid")

    suite_id: DbId
    spec: RunSpec
    results: str = Field(description="the CLI's results JSONL: one case result per line")
    name: str | None = Field(default=None, max_length=200)
    checks: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=100)
    baseline_run_id: DbId | None = None


class RunEstimate(BaseModel):
    cases: int
    prompt_tokens: int = Field(description="input tokens of all cases, estimated with the local tokenizer")
    completion_tokens: int = Field(description="upper bound: each case's max_output_tokens")
    cost_usd: float = Field(description="at the endpoints' prices, all input uncached")
    by_strategy: dict[str, dict[str, float]]
    assumptions: list[str]
    over_window: int = Field(default=0, description="long-context cases that cannot fit their endpoint's "
                             "window and will be refused before sending")


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


class RunHeadline(BaseModel):
    """One endpoint × strategy of a run: the mean of the run's primary scorer over its scored cases."""

    endpoint: str = Field(description="endpoint name")
    strategy: str = Field(description="strategy key, e.g. rag[k=5]")
    scorer: str = Field(description="the run's primary (first) scorer")
    mean: float | None = Field(description="mean score over the cases scored so far; null when none is")
    n: int = Field(description="cases with this score")


class RunPublic(BaseModel):
    id: int
    name: str | None
    tags: list[str] = Field(default_factory=list, description="labels to find and group runs by")
    notes: str | None = Field(default=None, description="free-text annotation")
    headline: list[RunHeadline] = Field(default_factory=list, description="primary score per endpoint × "
                                        "strategy, in the spec's order")
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
    checks: list[str] = Field(default_factory=list, description="the run's CI checks as written")
    baseline_run_id: int | None = None
    check_results: list[CheckResult] | None = Field(
        default=None, description="each check on each endpoint, once the run has ended (single-run reads only)")
    checks_passed: bool | None = Field(
        default=None, description="true when the run completed and every check passed; false when a check "
                                  "failed or could not be evaluated, or the run failed or was cancelled; null "
                                  "while it runs or when it has no checks")


Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r'^[^\s,"\\][^,"\\]*$',
                           description="a label: no commas, quotes or backslashes")]


class RunUpdate(BaseModel):
    """Labels of a run to change; fields left out stay as they are. Results and spec never change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "rag k=5 baseline", "tags": ["baseline", "qwen"], "notes": "before the chunker change"}]})

    name: str | None = Field(default=None, max_length=200, description="display name; null or empty clears it")
    tags: list[Tag] | None = Field(default=None, max_length=20, description="replaces the run's tags")
    notes: str | None = Field(default=None, max_length=10_000, description="replaces the notes; null clears")


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


class WorkerPublic(BaseModel):
    executor_id: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime


class HealthPublic(BaseModel):
    status: Literal["ok"]
    database: str
    execution: str
    auth_required: bool
    version: str
    workers: list[WorkerPublic] = Field(
        default_factory=list, description="executors with a heartbeat within worker_timeout_s: who can "
        "execute queued runs now (none: queued runs wait for a worker)")


# ------------------------------------------------------------------------------------ run comparison
class RunBrief(BaseModel):
    id: int = Field(description="run id")
    name: str | None = Field(description="the run's name, if any")
    status: str = Field(description="queued, running, completed, failed or cancelled")
    suite_id: int = Field(description="the stored suite version the run used")
    suite_name: str = Field(description="the suite's name")
    suite_hash: str = Field(description="content hash of that suite version")
    n_cases: int = Field(description="cases stored so far")


class RunAgainstBaseline(BaseModel):
    run: RunBrief
    same_suite: bool = Field(description="true when both runs used the same suite content; otherwise "
                                         "questions are paired by id where both suites have it")
    notes: list[str] = Field(description="what to keep in mind reading the numbers")
    comparison: RunPairComparison


class RunsComparison(BaseModel):
    """Two or more runs against one baseline run."""

    baseline: RunBrief
    scorer: str = Field(description="the score compared (default: the baseline's primary scorer)")
    runs: list[RunAgainstBaseline] = Field(description="every other run, in the order asked for")
