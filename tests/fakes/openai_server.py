"""A fake OpenAI-compatible server for tests: the shared deterministic fake model behind the routes and
quirks of real servers (vLLM, SGLang, llama.cpp, TGI, OpenAI, DeepSeek).

The model is :mod:`tests.fakes.fake_model`, the same one the in-process ``httpx.MockTransport`` fake
(:mod:`tests.fakes.mock_transport`) uses; ``tests/test_fake_model.py`` checks that both answer alike.
It answers from the context it is given: the question is the text after the last ``Question:`` of the
last user message (or that whole message); the answer is taken from the context sentence sharing the
most words with it (stop words ignored; at least 80 % of the words up to the question's first ``?``),
as the text after ``": "`` or ``" is "`` (``"The special magic number for foo is: 1234567."`` →
``1234567``); else it answers ``unanswerable``. So strategies that put different text in the prompt
really get different answers. It also plays the agent (the ``SEARCH:``/``READ:``/``ANSWER:`` text protocol, and native tool
calls with ``tool_mode``) and the judge (a JSON verdict for prompts of ``evals.judge``).

Routes
    ``POST /v1/chat/completions`` (``stream`` true or false, ``stream_options.include_usage``,
    ``max_tokens`` / ``max_completion_tokens``, native ``tools``), ``GET /v1/models`` (with
    ``max_model_len``), ``GET /props`` (llama.cpp, ``default_generation_settings.n_ctx``),
    ``POST /tokenize`` and ``/detokenize`` (vLLM ``{count, max_model_len, tokens}`` when the body has
    ``prompt`` or ``messages``, else llama.cpp ``{tokens}``), ``POST /v1/embeddings`` (64-d hashed bag of
    words), ``GET /health``. Test controls: ``GET /_stats``, ``POST /_control`` (config changes),
    ``POST /_reset`` (stats and prompt cache).

Behaviour (:class:`FakeConfig`)
    latency before the first token and per token; ``max_model_len`` (prompt tokens + max tokens beyond it
    → the overflow error of ``overflow_shape``); ``usage_shape`` (openai, deepseek, llamacpp, none) with
    cached tokens = the prompt prefix (in 16-token blocks) an earlier request shared; ``stream_usage``;
    ``reasoning_field`` (reasoning deltas before the answer); ``tool_mode`` (native tool calls: a
    request offering ``tools`` gets the agent's move, a ``search`` call with ``{"query": question}``
    first; without it the server ignores ``tools``, as servers without tool support do); ``disabled_paths`` (404);
    ``api_key``; and a FIFO of scripted faults, one consumed per chat or embedding request:
    ``{"status": 429, "retry_after": 0.01}``, ``{"status": 500}``, ``{"kind": "timeout"}`` (stall
    ``timeout_stall_s`` before answering), ``truncate`` (stream closed before ``[DONE]``),
    ``stream_error`` (``data: {"error": …}`` inside a 200 stream), ``keepalive`` (``: keep-alive`` lines
    first), ``empty_content`` (reasoning only, finish ``length``), ``tool_call`` (``name``,
    ``arguments``). A prompt containing ``FAKE_FAULT:<status|kind>[*N]`` scripts its own fault (for
    tests across processes).

Running: :func:`run_in_thread` (uvicorn in a background thread), :func:`run_in_subprocess`, or
``python -m tests.fakes.openai_server --port P [--latency-ms MS] [--max-model-len N] …``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from tests.fakes import fake_model as fm
from tests.fakes.chat import ChatPlan
from tests.fakes.runner import FakeServer, run_in_subprocess, run_in_thread, serve_forever
from tests.fakes.state import FakeConfig, FakeState, Fault

__all__ = ["FakeConfig", "FakeServer", "Fault", "make_app", "run_in_subprocess", "run_in_thread"]
CHAT_PATH = "/v1/chat/completions"


def _error(status: int, message: str, etype: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": etype, "code": status}}, status_code=status,
                        headers=headers)


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data)}\n\n"


class _InFlight:
    """ASGI wrapper counting chat requests in flight from arrival until the response is fully sent."""

    def __init__(self, app: Any, state: FakeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        self.state.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.leave()


async def _stall(request: Request, seconds: float) -> None:
    """Sleep ``seconds``, returning early when the client goes away."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.05))
        if await request.is_disconnected():
            return


def _fault_response(fault: Fault) -> JSONResponse:
    assert fault.status is not None
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    etype = "rate_limit_error" if fault.status == 429 else "server_error"
    return _error(fault.status, fault.message or f"scripted fault: HTTP {fault.status}", etype, headers)


def make_app(config: FakeConfig | None = None) -> FastAPI:
    """The fake server as a FastAPI app; ``app.state.fake`` is its :class:`FakeState`."""
    state = FakeState(config or FakeConfig())
    app = FastAPI(title="fake OpenAI-compatible server", openapi_url=None)
    app.state.fake = state
    app.add_middleware(_InFlight, state=state)

    def guard(request: Request) -> JSONResponse | None:
        cfg = state.config
        if request.url.path in cfg.disabled_paths:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if cfg.api_key and request.headers.get("authorization") != f"Bearer {cfg.api_key}":
            return _error(401, "Incorrect API key provided.", "authentication_error")
        return None

    async def json_body(request: Request) -> dict[str, Any] | JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not JSON")
        return body if isinstance(body, dict) else _error(400, "the request body must be a JSON object")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.get("/_bodies")
    async def bodies() -> list[dict[str, Any]]:
        return state.bodies

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        """The raw-prompt route of base models: the prompt is answered as one user message."""
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        state.bodies.append(body)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return _error(400, "'prompt' must be a non-empty string")
        messages = [{"role": "user", "content": prompt}]
        state.record("/v1/completions", body.get("model"), len(fm.prompt_tokens(messages)))
        plan = ChatPlan.build(state.config, body, messages, None, cached=None,
                              prompt_tokens=len(fm.prompt_tokens(messages)))
        text = "".join(plan.content) if isinstance(plan.content, list) else str(plan.content)
        if body.get("stream"):
            async def events() -> Any:
                yield _sse({"object": "text_completion", "choices": [{"index": 0, "text": text,
                                                                       "finish_reason": None}]})
                yield _sse({"object": "text_completion", "choices": [{"index": 0, "text": "",
                                                                       "finish_reason": "stop"}]})
                yield "data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return {"object": "text_completion", "model": body.get("model"),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}

    @app.post("/_control")
    async def control(request: Request) -> Any:
        changes = await json_body(request)
        if isinstance(changes, JSONResponse):
            return changes
        try:
            return state.configure(changes).model_dump(mode="json")
        except ValidationError as e:
            return JSONResponse({"detail": json.loads(e.json())}, status_code=422)

    @app.post("/_reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        state.record(request.url.path)
        if (refused := guard(request)) is not None:
            return refused
        cfg = state.config
        rows = []
        for mid in cfg.served_models or [cfg.model]:
            row: dict[str, Any] = {"id": mid, "object": "model", "created": 0, "owned_by": "fake"}
            if cfg.list_max_model_len and cfg.max_model_len:
                row["max_model_len"] = cfg.max_model_len
            if cfg.n_ctx_train:
                row["meta"] = {"n_ctx_train": cfg.n_ctx_train}
            rows.append(row)
        return {"object": "list", "data": rows}

    @app.get("/props")
    async def props(request: Request) -> Any:
        state.record(request.url.path)
        if (refused := guard(request)) is not None:
            return refused
        settings: dict[str, Any] = {"params": {"temperature": 0.8}}
        if state.config.max_model_len:
            settings["n_ctx"] = state.config.max_model_len
        return {"default_generation_settings": settings, "total_slots": 1,
                "model_path": f"/models/{state.config.model}.gguf"}

    @app.post("/tokenize")
    async def tokenize(request: Request) -> Any:
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        if (refused := guard(request)) is not None:
            state.record(request.url.path)
            return refused
        if isinstance(body.get("messages"), list):
            toks = fm.prompt_tokens(body["messages"])
        else:
            toks = fm.tokenize(str(body.get("prompt", body.get("content", ""))))
        ids = [fm.token_id(t) for t in toks]
        state.vocab.update(zip(ids, toks, strict=True))
        state.record(request.url.path, body.get("model"), len(ids))
        if "prompt" in body or "messages" in body:
            return {"count": len(ids), "max_model_len": state.config.max_model_len, "tokens": ids}
        return {"tokens": ids}

    @app.post("/detokenize")
    async def detokenize(request: Request) -> Any:
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        state.record(request.url.path, body.get("model"))
        if (refused := guard(request)) is not None:
            return refused
        text = "".join(state.vocab.get(int(i), "") for i in body.get("tokens") or [])
        return {"prompt": text} if "model" in body else {"content": text}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            state.record(request.url.path, body.get("model"))
            return _error(400, "'input' must be a string or a list of strings")
        n_tokens = fm.embedding_tokens(texts)
        if (refused := guard(request)) is not None:
            state.record(request.url.path, body.get("model"), n_tokens)
            return refused
        fault = state.next_fault("\n".join(texts))
        state.record(request.url.path, body.get("model"), n_tokens, fault.label() if fault else None)
        if fault is not None and fault.status is not None:
            return _fault_response(fault)
        if fault is not None and fault.kind == "timeout":
            await _stall(request, fault.seconds if fault.seconds is not None else state.config.timeout_stall_s)
        data = [{"object": "embedding", "index": i, "embedding": fm.embed(t)} for i, t in enumerate(texts)]
        return {"object": "list", "data": data, "model": body.get("model") or state.config.model,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}

    @app.post(CHAT_PATH)
    async def chat(request: Request) -> Any:
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            state.record(CHAT_PATH)
            return body
        state.bodies.append(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            state.record(CHAT_PATH, body.get("model"))
            return _error(400, "'messages' must be a non-empty list of message objects")
        tokens = fm.prompt_tokens(messages)
        if (refused := guard(request)) is not None:
            state.record(CHAT_PATH, body.get("model"), len(tokens))
            return refused
        fault = state.next_fault("\n".join(fm.message_text(m) for m in messages))
        state.record(CHAT_PATH, body.get("model"), len(tokens), fault.label() if fault else None)
        if fault is not None and fault.status is not None:
            return _fault_response(fault)
        cfg = state.config
        requested = body.get("max_completion_tokens") or body.get("max_tokens")
        overflowed = fm.overflow(len(tokens), requested, cfg.max_model_len, cfg.overflow_shape)
        if overflowed is not None:
            return JSONResponse(overflowed[1], status_code=overflowed[0])
        plan = ChatPlan.build(cfg, body, messages, fault, cached=state.cached_prefix(tokens),
                              prompt_tokens=len(tokens))
        stall = cfg.first_token_latency_s
        if fault is not None and fault.kind == "timeout":
            stall += fault.seconds if fault.seconds is not None else cfg.timeout_stall_s
        if stall > 0:
            await _stall(request, stall)
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(plan.stream(include, cfg.token_latency_s), media_type="text/event-stream")
        return plan.response()

    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.openai_server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as FAKE_SERVER_PORT=P)")
    p.add_argument("--latency-ms", type=float, help="delay before the first token")
    p.add_argument("--token-latency-ms", type=float, help="delay between tokens")
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--overflow-shape")
    p.add_argument("--usage-shape")
    p.add_argument("--reasoning-field")
    p.add_argument("--tool-mode", action="store_true")
    p.add_argument("--config-json", help="a whole FakeConfig as JSON (flags override it)")
    args = p.parse_args(argv)
    config = FakeConfig.model_validate_json(args.config_json) if args.config_json else FakeConfig()
    changes: dict[str, Any] = {}
    if args.latency_ms is not None:
        changes["first_token_latency_s"] = args.latency_ms / 1000
    if args.token_latency_ms is not None:
        changes["token_latency_s"] = args.token_latency_ms / 1000
    for name in ("max_model_len", "overflow_shape", "usage_shape", "reasoning_field"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.tool_mode:
        changes["tool_mode"] = True
    config = FakeConfig.model_validate({**config.model_dump(), **changes})
    serve_forever(make_app(config), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
