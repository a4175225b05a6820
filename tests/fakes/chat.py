"""One chat completion of the fake server: what it will say, as a JSON body or as an SSE stream.

What the model says (answer, agent move, judge verdict, reasoning) and how many tokens it costs come from
:mod:`tests.fakes.fake_model`; this module adds the server's config and faults and renders the reply."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.fakes import fake_model as fm
from tests.fakes.shapes import usage_fields
from tests.fakes.state import FakeConfig, Fault

_ids = itertools.count(1)
STREAM_ERROR = {"message": "scripted fault: the model failed mid-stream", "type": "server_error", "code": 500}


@dataclass
class ChatPlan:
    """The fully decided answer to one chat request; rendering it is all that is left."""

    cfg: FakeConfig
    model: str
    fault: Fault | None
    prompt_tokens: int
    cached: int
    reasoning_field: str | None = None
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    id: str = field(default_factory=lambda: f"chatcmpl-fake-{next(_ids)}")
    created: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def build(cls, cfg: FakeConfig, body: dict[str, Any], messages: list[dict[str, Any]],
              fault: Fault | None, *, cached: int, prompt_tokens: int) -> ChatPlan:
        plan = cls(cfg=cfg, model=str(body.get("model") or cfg.model), fault=fault,
                   prompt_tokens=prompt_tokens, cached=cached)
        budget = body.get("max_completion_tokens") or body.get("max_tokens")
        kind = fault.kind if fault else None
        if kind == "tool_call" and fault is not None:
            plan._calls([fm.tool_call(str(fault.name), fault.arguments, len(messages))])
            return plan
        # a server without tool support (tool_mode off) ignores the tools a request offers
        said = fm.reply(messages, body.get("tools") if cfg.tool_mode else None)
        if said.tool_calls:
            plan._calls(said.tool_calls)
            return plan
        if cfg.reasoning_field or kind == "empty_content":
            plan.reasoning_field = cfg.reasoning_field or "reasoning_content"
            plan.reasoning, _ = fm.within_budget(fm.tokenize(fm.reasoning_text(messages)), budget)
        if kind == "empty_content":
            plan.finish_reason = "length"
            return plan
        plan.content, plan.finish_reason = fm.within_budget(fm.tokenize(said.text), budget, len(plan.reasoning))
        return plan

    def _calls(self, calls: list[dict[str, Any]]) -> None:
        self.tool_calls = calls
        self.finish_reason = "tool_calls"

    @property
    def completion_tokens(self) -> int:
        return fm.completion_tokens("".join(self.content), self.tool_calls, len(self.reasoning))

    def usage(self) -> dict[str, Any]:
        return usage_fields(self.cfg.usage_shape, prompt=self.prompt_tokens, completion=self.completion_tokens,
                            cached=self.cached, reasoning=len(self.reasoning))

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "system_fingerprint": self.cfg.system_fingerprint}

    # ------------------------------------------------------------------------------ non-streamed
    def response(self) -> Response:
        kind = self.fault.kind if self.fault else None
        if kind == "stream_error":
            return JSONResponse({"error": STREAM_ERROR})
        message: dict[str, Any] = {"role": "assistant",
                                   "content": None if self.tool_calls else "".join(self.content)}
        if self.reasoning_field:
            message[self.reasoning_field] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        data = {**self._head("chat.completion"),
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": self.finish_reason}], **self.usage()}
        text = json.dumps(data)
        if kind == "truncate":
            return Response(text[: len(text) // 2], media_type="application/json")
        if kind == "keepalive":
            lines = ["\n"] * self.cfg.keepalive_lines + [text]
            return StreamingResponse(_aiter(lines), media_type="application/json")
        return Response(text, media_type="application/json")

    # ------------------------------------------------------------------------------ streamed
    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {**self._head("chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(data)}\n\n"

    async def stream(self, include_usage: bool, token_latency_s: float) -> AsyncIterator[str]:
        """SSE lines; the usage chunk follows the server family of ``usage_shape``."""
        kind = self.fault.kind if self.fault else None
        shape = self.cfg.usage_shape
        send_usage = self.cfg.stream_usage and shape != "none"
        # OpenAI puts "usage": null on every chunk once include_usage is asked for
        extra = {"usage": None} if include_usage and shape in ("openai", "deepseek") else {}
        if kind == "keepalive":
            for _ in range(self.cfg.keepalive_lines):
                yield ": keep-alive\n\n"
        yield self._chunk({"role": "assistant", "content": ""}, **extra)
        pieces = [(str(self.reasoning_field), t) for t in self.reasoning] + [("content", t) for t in self.content]
        stop_at = {"truncate": len(pieces) // 2, "stream_error": min(1, len(pieces))}.get(str(kind))
        for i, (name, token) in enumerate(pieces):
            if i == stop_at:
                break
            if i and token_latency_s:
                await asyncio.sleep(token_latency_s)
            yield self._chunk({name: token}, **extra)
        if kind == "truncate":
            return
        if kind == "stream_error":
            yield f"data: {json.dumps({'error': STREAM_ERROR})}\n\n"
            return
        for call in self.tool_calls:
            yield self._chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                               "function": {"name": call["function"]["name"],
                                                            "arguments": ""}}]}, **extra)
            args = call["function"]["arguments"]
            step = max(1, len(args) // 3)
            for j in range(0, len(args), step):
                yield self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[j:j + step]}}]},
                                  **extra)
        if shape == "llamacpp" and send_usage:
            yield self._chunk({}, self.finish_reason, **self.usage())
        else:
            yield self._chunk({}, self.finish_reason, **extra)
            if include_usage and send_usage:
                yield f"data: {json.dumps({**self._head('chat.completion.chunk'), 'choices': [], **self.usage()})}\n\n"
        yield "data: [DONE]\n\n"


async def _aiter(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item
