"""The shared fake model (:mod:`tests.fakes.fake_model`) behind ``httpx.MockTransport``, for engine unit
tests that want no other process or socket.

A thin adapter: what it answers, the tokens it counts, the cached tokens, the embeddings, the agent's
moves, the judge's verdicts and the overflow error all come from :mod:`tests.fakes.fake_model`, exactly as
in the fake server (``tests/test_fake_model.py`` holds the two to the same answers). It adds what a unit
test needs: it records every request body (``requests``, ``embed_requests``, ``judge_requests``), takes
a ``window`` (the server's ``max_model_len``), ``embed_failures`` (that many 503s before embeddings work)
and lets a test replace the ``answer``, ``agent`` or ``judge`` behaviour with a function of the messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.fakes import fake_model as fm
from tests.fakes.shapes import OverflowShape, usage_fields


def sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


class MockModel:
    def __init__(self, *, window: int | None = None, overflow_shape: OverflowShape = "openai",
                 cached: bool = True,
                 answer: Callable[[fm.Messages], str] = fm.answer_messages,
                 agent: Callable[[fm.Messages], fm.Move] = fm.agent_move,
                 judge: Callable[[fm.Messages], str] = fm.judge_verdict,
                 embed_failures: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.embed_requests: list[dict[str, Any]] = []
        self.judge_requests: list[dict[str, Any]] = []
        self.window = window
        self.overflow_shape: OverflowShape = overflow_shape
        self.cache = fm.PrefixCache() if cached else None
        self._answer = answer
        self._agent = agent
        self._judge = judge
        self._embed_failures = embed_failures

    def _embeddings(self, body: dict[str, Any]) -> httpx.Response:
        self.embed_requests.append(body)
        if self._embed_failures > 0:
            self._embed_failures -= 1
            return httpx.Response(503, json={"error": {"message": "embedding worker busy"}},
                                  headers={"retry-after-ms": "1"})
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": fm.embed(t)} for i, t in enumerate(texts)]
        n = fm.embedding_tokens(texts)
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                         "usage": {"prompt_tokens": n, "total_tokens": n}})

    def _reply(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """The text and tool calls to send back."""
        r = fm.reply(body["messages"], body.get("tools"), answer=self._answer, agent=self._agent,
                     judge=self._judge)
        if r.role == "judge":
            self.judge_requests.append(body)
        return r.text, r.tool_calls

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            return self._embeddings(body)
        self.requests.append(body)
        tokens = fm.prompt_tokens(body["messages"])
        budget = body.get("max_completion_tokens") or body.get("max_tokens")
        refused = fm.overflow(len(tokens), budget, self.window, self.overflow_shape)
        if refused is not None:
            return httpx.Response(refused[0], json=refused[1])
        cached = self.cache.cached(tokens) if self.cache is not None else 0
        text, tool_calls = self._reply(body)
        content, finish = fm.within_budget(fm.tokenize(text), budget)
        text = "".join(content)
        usage = usage_fields("openai", prompt=len(tokens), completion=fm.completion_tokens(text, tool_calls),
                             cached=cached, reasoning=0)
        delta: dict[str, Any] = {"content": text} if text else {}
        if tool_calls:
            delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(tool_calls)]
            finish = "tool_calls"
        chunks = [{"model": body["model"], "choices": [{"index": 0, "delta": delta}]},
                  {"model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
                  {"model": body["model"], "choices": [], **usage}]
        return httpx.Response(200, content=sse(chunks), headers={"content-type": "text/event-stream"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
