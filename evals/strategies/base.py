"""The strategy interface: how a question's context is put in front of the model.

A strategy is a small class registered by name, built from a :class:`~evals.domain.StrategySpec`
whose parameters are validated by the strategy's ``Params`` model and stored with the run.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

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
from evals.errors import UserInputError
from evals.presets import Preset, get_preset
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
        key = request_key(self.endpoint.base_url, body)
        cached = await self.cache.get(key) if self.cache is not None else None
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


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy(ABC):
    name: ClassVar[str]
    retrieval: ClassVar[bool] = False
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    async def answer(self, ctx: CaseContext) -> StrategyOutput: ...

    def prefix_key(self, question: Question, suite: Suite) -> str | None:
        """Questions with the same key share a long prompt prefix (for prefix-aware ordering)."""
        return None

    def system(self, ctx: CaseContext, default: str) -> list[dict[str, Any]]:
        return [{"role": "system", "content": ctx.system_prompt or default}]


STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


def build_strategy(spec: StrategySpec, *, index: int | None = None) -> Strategy:
    where = f"strategies[{index}]" if index is not None else "strategy"
    if spec.name not in STRATEGIES:
        raise UserInputError(f"unknown strategy '{spec.name}'; known: {', '.join(sorted(STRATEGIES))}",
                             field=f"{where}.name")
    cls = STRATEGIES[spec.name]
    try:
        params = cls.Params(**spec.params)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise UserInputError(f"{first['msg']}", field=f"{where}.params.{loc}") from e
    return cls(params)
