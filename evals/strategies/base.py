"""The strategy interface: how a question's context is put in front of the model.

A strategy is a small class registered by name, built from a :class:`~evals.domain.StrategySpec`
whose parameters are validated by the strategy's ``Params`` model and stored with the run.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from evals import registry
from evals.cache import ResponseCache, request_key
from evals.client import ChatResponse, ModelClient
from evals.domain import (
    CallRecord,
    Document,
    Endpoint,
    Outcome,
    Question,
    RetrievedChunk,
    StrategySpec,
    Suite,
    Truncation,
    Usage,
)
from evals.presets import Preset, get_preset
from evals.registry import NoParams
from evals.retrieval.base import IndexCache, RetrievalEnv
from evals.tokens import Tokenizer

INLINE_COUNT_CHARS = 8192  # texts up to this size are counted on the event loop (tens of microseconds)


class LLM:
    """Calls one endpoint for one case: consults the response cache and records every call."""

    def __init__(self, client: ModelClient, cache: ResponseCache | None,
                 on_first_token: Callable[[], None] | None = None) -> None:
        self.client = client
        self.endpoint: Endpoint = client.endpoint
        self.cache = cache
        self.calls: list[CallRecord] = []
        self._on_first_token = on_first_token
        self.sent: list[dict[str, Any]] = []
        self.prefill_mode: str | None = None

    async def chat(self, messages: list[dict[str, Any]], *, role: str = "answer",
                   max_tokens: int | None = None, tools: list[dict[str, Any]] | None = None,
                   answer_prefix: str = "", stop: list[str] | None = None,
                   temperature: float | None = None) -> ChatResponse:
        """One call. An ``answer_prefix`` is sent the endpoint's way (prefill or appended to the user turn);
        ``sent`` then holds what went out and ``prefill_mode`` how."""
        body = self.client.chat_body(messages, max_tokens=max_tokens, tools=tools, answer_prefix=answer_prefix,
                                     stop=stop, temperature=temperature)
        self.sent = body.get("messages") or [{"role": "prompt", "content": body.get("prompt", "")}]
        self.prefill_mode = self.client.prefill_mode() if answer_prefix else None
        cached = None
        if self.cache is not None:  # without a cache no key is needed
            key = request_key(self.endpoint.base_url, body)
            cached = await self.cache.get(key)
        if cached is not None:
            resp = ChatResponse(**{**cached, "usage": Usage(**cached["usage"])})
            from_cache = True
            if self._on_first_token is not None:
                self._on_first_token()
        else:
            resp = await self.client.chat(messages, body=body, on_first_token=self._first_token)
            from_cache = False
            if self.cache is not None:
                data = dict(resp.__dict__)
                data["usage"] = resp.usage.model_dump()
                await self.cache.put(key, data)
        self.calls.append(CallRecord(
            role=role, usage=resp.usage, ttft_s=resp.ttft_s, latency_s=resp.latency_s,
            cost_usd=self.endpoint.cost(resp.usage), finish_reason=resp.finish_reason, model=resp.model,
            system_fingerprint=resp.system_fingerprint, from_cache=from_cache, attempts=resp.attempts,
        ))
        return resp

    def _first_token(self) -> None:
        if self._on_first_token is not None:
            self._on_first_token()
            self._on_first_token = None


@dataclass
class CaseContext:
    """Everything a strategy needs to answer one question."""

    question: Question
    documents: list[Document]  # the question's long context, in order
    suite: Suite
    llm: LLM
    tokenizer: Tokenizer  # counts for budgets (the server's when it has one)
    chunk_tokenizer: Tokenizer  # a local tokenizer for chunking (index is endpoint-independent)
    indexes: IndexCache
    retrieval_env: RetrievalEnv
    system_prompt: str | None = None
    count_cache: dict[str, int] = field(default_factory=dict)
    preset: Preset = field(default_factory=lambda: get_preset(None))
    secrets: Mapping[str, str] = field(default_factory=dict)  # tokens by name, given by the caller

    @property
    def endpoint(self) -> Endpoint:
        return self.llm.endpoint

    async def count(self, text: str) -> int:
        """Token count with a per-engine memo (long contexts are shared by many questions). Short texts
        are counted inline: a hop to a worker thread costs more than counting them."""
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() if len(text) > 256 else text
        if key not in self.count_cache:
            if len(text) <= INLINE_COUNT_CHARS and not getattr(self.tokenizer, "remote", False):
                self.count_cache[key] = self.tokenizer.count(text)
            else:
                self.count_cache[key] = await asyncio.to_thread(self.tokenizer.count, text)
        return self.count_cache[key]


MESSAGE_OVERHEAD = 8  # chat-template tokens per message, a conservative estimate


class EstimateContext:
    """What a strategy's token estimate may look at before a run: one question of the suite on one
    endpoint, counted with a local tokenizer (no model call). The whole-context size of a document
    list is counted once and shared by every strategy and question."""

    def __init__(self, suite: Suite, tokenizer: Tokenizer, *, system_prompt: str | None = None) -> None:
        self.suite = suite
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.question: Question = suite.questions[0] if suite.questions else None  # type: ignore[assignment]
        self.endpoint: Endpoint | None = None
        self._context: dict[tuple[str, ...] | None, int] = {}

    def at(self, question: Question, endpoint: Endpoint) -> EstimateContext:
        self.question, self.endpoint = question, endpoint
        return self

    def count(self, text: str) -> int:
        return self.tokenizer.count(text)

    def context_tokens(self) -> int:
        """Tokens of the question's documents rendered as the long-context prompt renders them."""
        from evals import prompts

        q = self.question
        key = tuple(q.doc_ids) if q.doc_ids is not None else None
        if key not in self._context:
            self._context[key] = self.count(prompts.render_documents(self.suite.context_documents(q)))
        return self._context[key]

    def frame_tokens(self) -> int:
        """The long-context prompt around the documents: system prompt, question, message overheads."""
        from evals import prompts

        text = (self.system_prompt or prompts.SYSTEM) + prompts.long_context_user("", self.question.question)
        return self.count(text) + 2 * MESSAGE_OVERHEAD


def context_budget(endpoint: Endpoint, *, margin_tokens: int, frame_tokens: int) -> int | None:
    """Tokens the documents may take on ``endpoint``: window − output − margin − the prompt around
    them; None when the window is unknown. The one budget rule of the strategies and the estimate."""
    if endpoint.context_window is None:
        return None
    return endpoint.context_window - endpoint.max_output_tokens - margin_tokens - frame_tokens


@dataclass
class StrategyOutput:
    answer: str = ""
    reasoning: str = ""
    prompt: list[dict[str, Any]] = field(default_factory=list)
    retrieved: list[RetrievedChunk] = field(default_factory=list)
    route: str | None = None
    truncation: Truncation | None = None
    outcome: Outcome | None = None  # None: decided from the answer
    error_class: str | None = None
    error_message: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


class Strategy(ABC):
    """A strategy registers with ``@evals.registry.strategy()``; its name, label, ``Params`` model and
    whether it retrieves are declared here once and read by the registry."""

    name: ClassVar[str]
    label: ClassVar[str | None] = None
    retrieval: ClassVar[bool] = False
    Params: ClassVar[type[BaseModel]] = NoParams
    estimate_note: ClassVar[str | None] = None  # what the token estimate leaves out, shown with it

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    async def answer(self, ctx: CaseContext) -> StrategyOutput: ...

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        """(input tokens, sent) of the question ``est`` points at, before the run: what the estimate and
        the dashboard show. The default counts the whole long-context prompt; strategies that send
        less (or nothing) say so."""
        return est.frame_tokens() + est.context_tokens(), True

    def required_secrets(self) -> list[str]:
        """Names of the secrets (tokens) this strategy needs from the caller, e.g. an HTTP pipeline's."""
        return []

    async def aclose(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Release what the strategy holds for the run (HTTP clients); the engine calls it at the end."""

    def prefix_key(self, question: Question, suite: Suite) -> str | None:
        """Questions with the same key share a long prompt prefix (for prefix-aware ordering)."""
        return None

    def system(self, ctx: CaseContext, default: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": ctx.system_prompt or default}]


def build_strategy(spec: StrategySpec, *, index: int | None = None) -> Strategy:
    """The strategy a spec names, built through the registry with validated parameters."""
    where = f"strategies[{index}]" if index is not None else "strategy"
    registry.get("strategy", spec.name, field_name=f"{where}.name")
    built: Strategy = registry.build("strategy", spec.name, spec.params, field_prefix=f"{where}.params")
    return built
