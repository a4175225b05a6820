"""An in-process model behind ``httpx.MockTransport`` for engine unit tests (no other process).

It answers from its prompt: the value after "is:" in the context sentence that shares the most words
with the question, or "unanswerable". It records every request body so tests can inspect prompts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "an", "is", "of", "for", "what", "which", "to", "in", "and", "one", "are", "was"}


def answer_from_prompt(messages: list[dict[str, Any]]) -> str:
    user = str(messages[-1]["content"])
    question = user.rsplit("Question:", 1)[-1].split("\nAnswer:")[0].strip()
    context = user.rsplit("Question:", 1)[0]
    qwords = set(_WORD.findall(question.lower())) - _STOP
    best, best_overlap = None, 0
    for sentence in re.split(r"(?<=[.!?])\s+|\n", context):
        overlap = len(qwords & set(_WORD.findall(sentence.lower())))
        if overlap > best_overlap and "is:" in sentence:
            best, best_overlap = sentence, overlap
    if best is None or best_overlap < 0.8 * len(qwords):
        return "unanswerable"
    return best.split("is:", 1)[1].strip().rstrip(".")


def sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


class MockModel:
    def __init__(self, *, window: int | None = None, cached: bool = True,
                 answer: Callable[[list[dict[str, Any]]], str] = answer_from_prompt) -> None:
        self.requests: list[dict[str, Any]] = []
        self.window = window
        self.cached = cached
        self._answer = answer
        self._seen_prefixes: set[str] = set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        messages = body["messages"]
        prompt_words = sum(len(str(m["content"]).split()) for m in messages)
        if self.window is not None and prompt_words > self.window:
            return httpx.Response(400, json={"error": {
                "message": f"This model's maximum context length is {self.window} tokens. However, your "
                           f"request has {prompt_words} input tokens.", "code": 400}})
        prefix = str(messages[-1]["content"]).rsplit("Question:", 1)[0]
        cached = prompt_words - 20 if (self.cached and prefix in self._seen_prefixes) else 0
        self._seen_prefixes.add(prefix)
        text = self._answer(messages)
        usage = {"prompt_tokens": prompt_words, "completion_tokens": len(text.split()),
                 "prompt_tokens_details": {"cached_tokens": max(cached, 0)}}
        chunks = [{"model": body["model"], "choices": [{"index": 0, "delta": {"content": text}}]},
                  {"model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                  {"model": body["model"], "choices": [], "usage": usage}]
        return httpx.Response(200, content=sse(chunks), headers={"content-type": "text/event-stream"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
