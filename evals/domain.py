"""The engine's domain: suite, document, question, endpoint, strategy, run, case, score.

Everything here is a pydantic model that serialises to JSON; the web layer maps these to tables.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from evals.limits import (
    ENDPOINT_NAME_MAX,
    ITEM_ID_MAX,
    STRATEGY_KEY_MAX,
    STRATEGY_NAME_MAX,
    SUITE_NAME_MAX,
)

ENGINE_VERSION = "0.1.0"


def stable_hash(value: Any) -> str:
    """sha256 of the canonical JSON form of ``value`` (sorted keys, no whitespace)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


_HASH_SLICE = 1 << 16


def streaming_hash(value: Any) -> str:
    """:func:`stable_hash` of ``value`` (the same digest) without building its JSON text: the JSON is
    fed to sha256 piece by piece, and a long string a slice at a time, so hashing a request with a
    4 MB prompt costs no second copy of the prompt."""
    if _is_small(value, _HASH_SLICE):  # one JSON text costs less than feeding it in pieces
        return stable_hash(value)
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _is_small(value: Any, limit: int) -> bool:
    """Whether the strings in ``value`` (keys included) add up to at most ``limit`` characters: a walk
    that encodes nothing and stops as soon as they pass it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            limit -= len(item)
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str):
                    limit -= len(key)
                stack.append(sub)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        if limit < 0:
            return False
    return True


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, str) and len(value) > _HASH_SLICE:
        from json.encoder import encode_basestring

        h.update(b'"')
        for i in range(0, len(value), _HASH_SLICE):  # JSON escapes character by character
            h.update(encode_basestring(value[i:i + _HASH_SLICE])[1:-1].encode("utf-8"))
        h.update(b'"')
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        h.update(b"{")
        for n, key in enumerate(sorted(value)):
            if n:
                h.update(b",")
            _feed(h, key)
            h.update(b":")
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for n, item in enumerate(value):
            if n:
                h.update(b",")
            _feed(h, item)
        h.update(b"]")
    else:  # short strings, numbers, None, and whatever json.dumps turns into a string
        h.update(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            default=str).encode("utf-8"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------- suite
class Document(_Strict):
    """One text in a suite's corpus."""

    id: str = Field(min_length=1, max_length=ITEM_ID_MAX)
    title: str = ""
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class Evidence(_Strict):
    """Where the answer to a question is written: a document, optionally a character span of it."""

    doc_id: str
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _span(self) -> Evidence:
        if (self.start is None) != (self.end is None):
            raise ValueError("evidence needs both 'start' and 'end' or neither")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("evidence 'end' is before 'start'")
        return self


class Question(_Strict):
    """A question over a suite.

    ``doc_ids`` is the ordered list of documents that form this question's long context; when it is
    None the whole corpus of the suite (in suite order) is the context. Sweeps and per-question
    imports (LongBench style) set it.
    """

    id: str = Field(min_length=1, max_length=ITEM_ID_MAX)
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    doc_ids: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def unanswerable(self) -> bool:
        return bool(self.metadata.get("unanswerable"))


class Suite(_Strict):
    """Documents plus questions. Identified by the hash of its content."""

    name: str = Field(min_length=1, max_length=SUITE_NAME_MAX)
    description: str = ""
    documents: list[Document] = Field(default_factory=list)
    questions: list[Question] = Field(min_length=1)
    default_scorers: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    _doc_map: tuple[tuple[int, int], dict[str, Document]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ids(self) -> Suite:
        seen: set[str] = set()
        for i, d in enumerate(self.documents):
            if d.id in seen:
                raise ValueError(f"duplicate document id '{d.id}' (documents[{i}])")
            seen.add(d.id)
        qseen: set[str] = set()
        for i, q in enumerate(self.questions):
            if q.id in qseen:
                raise ValueError(f"duplicate question id '{q.id}' (questions[{i}])")
            qseen.add(q.id)
            for ev in q.evidence:
                if ev.doc_id not in seen:
                    raise ValueError(f"question '{q.id}' cites unknown document '{ev.doc_id}'")
            for did in q.doc_ids or []:
                if did not in seen:
                    raise ValueError(f"question '{q.id}' lists unknown document '{did}' in doc_ids")
        return self

    def __eq__(self, other: object) -> bool:  # the fields only, not the lookup cache
        if not isinstance(other, Suite):
            return NotImplemented
        return self.__dict__ == other.__dict__

    @property
    def content_hash(self) -> str:
        return stable_hash(self.model_dump(mode="json"))

    def document_map(self) -> dict[str, Document]:
        """Documents by id; built once per documents list (a run looks up every question's documents)."""
        key = (id(self.documents), len(self.documents))
        if self._doc_map is None or self._doc_map[0] != key:
            self._doc_map = (key, {d.id: d for d in self.documents})
        return self._doc_map[1]

    def context_documents(self, question: Question) -> list[Document]:
        """The ordered documents forming ``question``'s long context."""
        if question.doc_ids is None:
            return list(self.documents)
        dm = self.document_map()
        return [dm[i] for i in question.doc_ids]


# ------------------------------------------------------------------------------------------ endpoint
def normalise_base_url(url: str) -> str:
    """The one rule for base URLs everywhere (CLI, API, dashboard, probe): surrounding spaces and
    trailing slashes go, and so does a trailing ``/v1``, so ``http://host:8001/v1/`` and
    ``http://host:8001`` name the same server; requests then go to ``{root}/v1/chat/completions``."""
    v = url.strip().rstrip("/")
    if not v.startswith(("http://", "https://")):
        raise ValueError("base_url must start with http:// or https://")
    if v.endswith("/v1"):
        v = v[:-3].rstrip("/")
    if v in ("http:", "https:"):
        raise ValueError("base_url has no host")
    if "?" in v or "#" in v:  # the request paths are appended to it: a query would swallow them
        raise ValueError("base_url must not contain a query (?) or a fragment (#)")
    return v


class Endpoint(_Strict):
    """An OpenAI-compatible server and the model on it, with its limits and prices."""

    name: str = Field(min_length=1, max_length=ENDPOINT_NAME_MAX, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    base_url: str = Field(min_length=1, description="the server's root URL, e.g. http://127.0.0.1:8001; an "
                                                     "OpenAI-style URL ending in /v1 is accepted and stored "
                                                     "without it (requests go to {base_url}/v1/...)")
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int = Field(default=256, gt=0)
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    temperature: float | None = 0.0
    seed: int | None = 0
    price_input: float = Field(default=0.0, ge=0, description="USD per 1M uncached input tokens")
    price_cached_input: float | None = Field(default=None, ge=0, description="USD per 1M cached input tokens")
    price_output: float = Field(default=0.0, ge=0, description="USD per 1M output tokens")
    concurrency: int = Field(default=4, ge=1, le=1024)
    tokenizer: str = Field(default="auto", description="auto | server | cl100k | deepseek-v4 | path to tokenizer.json")
    timeout_s: float = Field(default=600.0, gt=0, description="read timeout between stream chunks")
    deadline_s: float = Field(default=1800.0, gt=0, description="wall-clock limit per request")
    max_retries: int = Field(default=2, ge=0, le=10)
    supports_tools: bool | None = None
    api: Literal["chat", "completions"] = Field(
        default="chat", description="chat: /v1/chat/completions; completions: /v1/completions with the raw "
        "prompt (base models, no chat template)")
    prefill: Literal["auto", "assistant", "continue_final_message", "deepseek", "user"] = Field(
        default="auto", description="how an answer prefix is sent: assistant (a final assistant message the "
        "server continues: llama.cpp), continue_final_message (vLLM, SGLang), deepseek (chat prefix completion), "
        "user (appended to the user turn); auto: deepseek for api.deepseek.com, else user")
    embedding_model: str | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)
    # the base URL the key was given with; a copy with another base_url never sends the key
    _key_url: str | None = PrivateAttr(default=None)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return normalise_base_url(v)

    @model_validator(mode="after")
    def _bind_key(self) -> Endpoint:
        self._key_url = self.base_url if self.api_key is not None and self.api_key.get_secret_value() else None
        return self

    def request_key(self) -> str | None:
        """The key to send, or None. A key is sent only to the base URL it was given with: a copy of
        this endpoint pointed elsewhere (``model_copy(update={"base_url": ...})``) sends none. Every
        request the engine builds takes its key from here."""
        if self.api_key is None or self._key_url is None or self._key_url != self.base_url:
            return None
        return self.api_key.get_secret_value() or None

    def public(self) -> dict[str, Any]:
        """The endpoint without its key: what may be stored in a spec, shown or logged."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        for key, default in (("api", "chat"), ("prefill", "auto")):  # defaults left out: stored specs keep their hash
            if data.get(key) == default:
                data.pop(key)
        data["has_api_key"] = self.api_key is not None and bool(self.api_key.get_secret_value())
        return data

    def cost(self, usage: Usage) -> float | None:
        """USD for ``usage``: cached input at its own price (input price when none is set)."""
        if usage.prompt_tokens is None and usage.completion_tokens is None:
            return None
        prompt = usage.prompt_tokens or 0
        cached = usage.cached_tokens or 0
        cached_price = self.price_input if self.price_cached_input is None else self.price_cached_input
        return ((prompt - cached) * self.price_input + cached * cached_price
                + (usage.completion_tokens or 0) * self.price_output) / 1_000_000


# ------------------------------------------------------------------------------------------ strategy
class StrategySpec(_Strict):
    """A strategy by registered name with its parameters. ``label`` tells two specs of one name apart."""

    name: str = Field(min_length=1, max_length=STRATEGY_NAME_MAX)
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(default=None, max_length=STRATEGY_KEY_MAX)

    @model_validator(mode="after")
    def _key_fits(self) -> StrategySpec:
        if len(self.key) > STRATEGY_KEY_MAX:
            raise ValueError(f"the strategy's key '{self.key[:60]}…' is {len(self.key)} characters, over the "
                             f"limit of {STRATEGY_KEY_MAX}; give it a shorter 'label'")
        return self

    @property
    def key(self) -> str:
        if self.label:
            return self.label
        if not self.params:
            return self.name
        parts = ",".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        return f"{self.name}[{parts}]"


class RunSpec(_Strict):
    """Everything that determines a run's results. Frozen; ``spec_hash`` identifies it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite_hash: str
    suite_name: str = ""
    endpoints: list[dict[str, Any]] = Field(min_length=1, description="Endpoint.public() of each endpoint")
    strategies: list[StrategySpec] = Field(min_length=1)
    scorers: list[str] = Field(default_factory=list)
    system_prompt: str | None = None
    judge: dict[str, Any] | None = Field(default=None, description="Endpoint.public() of the judge endpoint")
    embeddings: dict[str, Any] | None = Field(default=None, description="where embeddings come from (no keys)")
    preset: str | None = Field(default=None, description="prompt preset for every question (overrides the suite's)")
    engine_version: str = ENGINE_VERSION

    @model_validator(mode="after")
    def _unique(self) -> RunSpec:
        names = [e.get("name") for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError("endpoint names in a run must be unique")
        keys = [s.key for s in self.strategies]
        if len(set(keys)) != len(keys):
            raise ValueError("two strategies have the same label; give one a distinct 'label'")
        return self

    @property
    def spec_hash(self) -> str:
        data = self.model_dump(mode="json")
        if data.get("preset") is None:  # specs without a preset keep the hash they had before presets existed
            data.pop("preset", None)
        return stable_hash(data)


# ------------------------------------------------------------------------------------------ results
class Outcome(StrEnum):
    ok = "ok"
    over_window = "over_window"  # prompt did not fit (server said so, or the strategy refused to send it)
    declined = "declined"  # model said the question is unanswerable from the context
    no_answer = "no_answer"  # the stream ended without content (e.g. reasoning used the whole budget)
    error = "error"  # any other failure; ``error_class`` says which
    judge_error = "judge_error"  # the answer is fine but a judge's verdict could not be parsed
    cancelled = "cancelled"  # the run was cancelled before the case finished


# Outcomes of a case that got no answer: its answer scores are 0 by definition and it counts as
# unanswered in the summary (``declined`` and ``judge_error`` cases have an answer).
UNANSWERED = frozenset({Outcome.over_window, Outcome.error, Outcome.no_answer, Outcome.cancelled})


class Usage(_Strict):
    """Token usage. ``None`` means the server did not say (unknown), never zero."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated_prompt_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        def add(a: int | None, b: int | None) -> int | None:
            if a is None and b is None:
                return None
            return (a or 0) + (b or 0)

        return Usage(
            prompt_tokens=add(self.prompt_tokens, other.prompt_tokens),
            completion_tokens=add(self.completion_tokens, other.completion_tokens),
            cached_tokens=add(self.cached_tokens, other.cached_tokens),
            reasoning_tokens=add(self.reasoning_tokens, other.reasoning_tokens),
            estimated_prompt_tokens=add(self.estimated_prompt_tokens, other.estimated_prompt_tokens),
        )


class CallRecord(_Strict):
    """One request to a model inside a case (self_route and agentic make several)."""

    role: str = "answer"  # answer | route | agent_step | judge | embed
    usage: Usage = Field(default_factory=Usage)
    ttft_s: float | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    finish_reason: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    from_cache: bool = False
    attempts: int = 1
    detail: dict[str, Any] = Field(default_factory=dict)


class RetrievedChunk(_Strict):
    chunk_id: str
    doc_id: str
    start: int  # character offsets in the document
    end: int
    score: float
    rank: int  # 0 = best by the retriever
    text: str = ""
    gold: bool = False  # overlaps gold evidence


class Truncation(_Strict):
    policy: str
    dropped_tokens: int = 0


class CaseResult(_Strict):
    """The stored result of one question × endpoint × strategy."""

    case_id: str
    question_id: str
    endpoint: str
    strategy: str  # StrategySpec.key
    strategy_name: str
    prompt: list[dict[str, Any]] = Field(default_factory=list)  # the final rendered messages
    answer: str = ""
    reasoning: str = ""
    usage: Usage = Field(default_factory=Usage)
    calls: list[CallRecord] = Field(default_factory=list)
    ttft_s: float | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    retrieved: list[RetrievedChunk] = Field(default_factory=list)
    route: str | None = None
    outcome: Outcome = Outcome.ok
    error_class: str | None = None
    error_message: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    truncation: Truncation | None = None
    context_tokens: int | None = None  # tokens of the question's full long context
    depth: float | None = None  # evidence depth in the long context, 0..100
    steps: list[dict[str, Any]] = Field(default_factory=list)  # agentic steps
    metadata: dict[str, Any] = Field(default_factory=dict)
    from_cache: bool = False

    @property
    def answered(self) -> bool:
        """False for over_window, error, no_answer and cancelled cases (see ``UNANSWERED``)."""
        return self.outcome not in UNANSWERED


def case_id_for(question_id: str, endpoint: str, strategy_key: str, identity: str | None = None) -> str:
    """Deterministic id of a case inside a run. ``identity`` (the hash of the case's full identity, see
    ``evals.runner.case_identity``) makes a changed model, strategy, question or scorer a new case."""
    parts = [question_id, endpoint, strategy_key] + ([identity] if identity is not None else [])
    return stable_hash(parts)[:24]
