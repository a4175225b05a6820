"""The fake server's configuration, scripted faults and bookkeeping (stats, prompt cache, vocabulary)."""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, deque
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tests.fakes import fake_model as fm
from tests.fakes.shapes import OverflowShape, UsageShape

FaultKind = Literal["timeout", "truncate", "stream_error", "keepalive", "empty_content", "tool_call"]
MARKER_RE = re.compile(r"FAKE_FAULT:(\d{3}|timeout|truncate|stream_error|keepalive|empty_content)(?:\*(\d+))?")


class Fault(BaseModel):
    """One scripted fault: an HTTP ``status`` (with optional Retry-After) or a ``kind`` of misbehaviour."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=400, le=599)
    kind: FaultKind | None = None
    retry_after: float | None = Field(default=None, description="Retry-After header, seconds")
    retry_after_ms: int | None = Field(default=None, description="retry-after-ms header")
    headers: dict[str, str] = Field(default_factory=dict, description="extra response headers")
    message: str | None = None
    seconds: float | None = Field(default=None, description="timeout: how long to stall")
    name: str | None = Field(default=None, description="tool_call: the function name")
    arguments: dict[str, Any] = Field(default_factory=dict, description="tool_call: its arguments")

    @model_validator(mode="after")
    def _one(self) -> Fault:
        if (self.status is None) == (self.kind is None):
            raise ValueError("a fault has exactly one of 'status' and 'kind'")
        if self.kind == "tool_call" and not self.name:
            raise ValueError("a tool_call fault needs 'name'")
        return self

    def label(self) -> str:
        return str(self.status) if self.status is not None else str(self.kind)


class FakeConfig(BaseModel):
    """Everything the fake server can be told; changeable at runtime (``POST /_control``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "fake-model"
    served_models: list[str] | None = Field(default=None, description="ids /v1/models lists; [model] if None")
    first_token_latency_s: float = Field(default=0.0, ge=0)
    token_latency_s: float = Field(default=0.0, ge=0)
    max_model_len: int | None = Field(default=32768, gt=0)
    list_max_model_len: bool = Field(default=True, description="put max_model_len in /v1/models (vLLM)")
    n_ctx_train: int | None = Field(default=None, description="llama.cpp meta.n_ctx_train in /v1/models")
    overflow_shape: OverflowShape = "openai"
    usage_shape: UsageShape = "openai"
    stream_usage: bool = True
    reasoning_field: Literal["reasoning", "reasoning_content"] | None = None
    tool_mode: bool = False
    cache_block: int = Field(default=fm.CACHE_BLOCK, ge=1, description="prefix-cache block size in tokens")
    system_fingerprint: str | None = "fp_fake"
    api_key: str | None = Field(default=None, description="require 'Authorization: Bearer <key>'")
    disabled_paths: list[str] = Field(default_factory=list, description="paths that answer 404")
    timeout_stall_s: float = Field(default=30.0, ge=0, description="stall of a timeout fault")
    keepalive_lines: int = Field(default=3, ge=0)
    faults: list[Fault] = Field(default_factory=list, description="FIFO, one consumed per model request")


class FakeState:
    """Mutable state of one fake server (lives in the server's event loop thread)."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.faults: deque[Fault] = deque(config.faults)
        self.vocab: dict[int, str] = {}
        self._cache = fm.PrefixCache()
        self._marker_uses: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[dict[str, Any]] = []
        self.bodies: list[dict[str, Any]] = []  # chat and completion request bodies, in arrival order
        self._cache.clear()
        self._marker_uses.clear()

    def configure(self, changes: dict[str, Any]) -> FakeConfig:
        """Apply ``changes`` (validated as a whole); ``faults`` replaces the pending queue."""
        merged = {**self.config.model_dump(), **changes}
        self.config = FakeConfig.model_validate(merged)
        if "faults" in changes:
            self.faults = deque(self.config.faults)
        return self.config

    def record(self, path: str, model: str | None = None, prompt_tokens: int | None = None,
               fault: str | None = None) -> None:
        self.requests += 1
        self.by_path[path] += 1
        self.log.append({"t": time.time(), "path": path, "model": model, "prompt_tokens": prompt_tokens,
                         "fault": fault})

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "by_path": dict(self.by_path), "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight, "faults_pending": len(self.faults),
                "log": list(self.log)}

    def next_fault(self, prompt_text: str) -> Fault | None:
        """A fault named by a ``FAKE_FAULT:<status|kind>[*N]`` marker in the prompt, else the queue's next.

        With ``*N`` only the first N requests carrying this very prompt fault. Marker status faults ask
        for a 10 ms retry delay.
        """
        m = MARKER_RE.search(prompt_text)
        if m:
            limit = int(m.group(2)) if m.group(2) else None
            key = hashlib.sha256(prompt_text.encode("utf-8")).hexdigest()
            self._marker_uses[key] += 1
            if limit is None or self._marker_uses[key] <= limit:
                what = m.group(1)
                if what.isdigit():
                    return Fault(status=int(what), retry_after_ms=10)
                return Fault(kind=what)  # type: ignore[arg-type]
        return self.faults.popleft() if self.faults else None

    def cached_prefix(self, tokens: list[str]) -> int:
        """Tokens of ``tokens``' prefix that an earlier prompt shared, in whole cache blocks."""
        return self._cache.cached(tokens, self.config.cache_block)
