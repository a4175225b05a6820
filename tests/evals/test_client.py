"""evals.client against scripted transports (httpx.MockTransport), one behaviour per test."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from evals.client import ModelClient, classify_http_error, normalise_usage, retry_after_seconds
from evals.domain import Endpoint, Usage
from evals.errors import (
    ContextOverflowError,
    EndpointConnectionError,
    EndpointTimeoutError,
    PermanentError,
    RateLimitError,
    ServerError,
    StreamError,
)
from tests.fakes.shapes import overflow_error

MESSAGES = [{"role": "user", "content": "Say hi."}]


def endpoint(**kw: Any) -> Endpoint:
    return Endpoint(name="t", base_url="http://model.test", model="m", **kw)


class Sleeps:
    """A fake ``sleep`` that records the delays the client asks for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c1", "model": "served-m", "choices": choices, **extra}


def sse(*chunks: dict[str, Any] | str, done: bool = True) -> bytes:
    lines = [c if isinstance(c, str) else f"data: {json.dumps(c)}\n\n" for c in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def stream_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": "text/event-stream", **(headers or {})})


def ok_stream(text: str = "hi") -> httpx.Response:
    return stream_response(sse(chunk({"content": text}), chunk({}, "stop")))


class Script:
    """Answers requests in order from a list of responses (or callables); records every request."""

    def __init__(self, *responses: httpx.Response | Callable[[httpx.Request], Any]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses[min(len(self.requests), len(self.responses)) - 1]
        if callable(item):
            result = item(request)
            return await result if asyncio.iscoroutine(result) else result
        return item


def make_client(script: Script, sleeps: Sleeps | None = None, **kw: Any) -> ModelClient:
    return ModelClient(endpoint(**kw), transport=httpx.MockTransport(script), sleep=sleeps or Sleeps(), seed=1)


def error_body(status: int, message: str = "boom", **err: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, **err}})


# ------------------------------------------------------------------------------------- usage
def test_usage_openai_shape() -> None:
    u = normalise_usage({"prompt_tokens": 100, "completion_tokens": 7,
                         "prompt_tokens_details": {"cached_tokens": 64},
                         "completion_tokens_details": {"reasoning_tokens": 5}})
    assert u == Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=64, reasoning_tokens=5)


def test_usage_deepseek_shape() -> None:
    u = normalise_usage({"prompt_tokens": 100, "completion_tokens": 7, "prompt_cache_hit_tokens": 96,
                         "prompt_cache_miss_tokens": 4})
    assert (u.prompt_tokens, u.cached_tokens) == (100, 96)


def test_usage_llamacpp_timings() -> None:
    u = normalise_usage({"prompt_tokens": 50, "completion_tokens": 3}, {"cache_n": 40, "prompt_n": 10})
    assert (u.prompt_tokens, u.cached_tokens) == (50, 40)
    only_timings = normalise_usage(None, {"cache_n": 40, "prompt_n": 10, "predicted_n": 3})
    assert only_timings == Usage(prompt_tokens=50, completion_tokens=3, cached_tokens=40)


def test_unreported_usage_is_none_not_zero() -> None:
    assert normalise_usage(None) == Usage()
    vllm_without_details = normalise_usage({"prompt_tokens": 9, "completion_tokens": 2,
                                            "prompt_tokens_details": None})
    assert vllm_without_details.cached_tokens is None
    assert vllm_without_details.reasoning_tokens is None


async def test_stream_takes_the_last_non_null_usage_from_a_chunk_without_choices() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 0}}
    script = Script(stream_response(sse(chunk({"content": "a"}, usage=None), chunk({}, "stop", usage=None),
                                        chunk(None, usage=usage))))
    async with make_client(script) as c:
        r = await c.chat(MESSAGES)
    assert r.usage == Usage(prompt_tokens=12, completion_tokens=2, cached_tokens=0)
    assert r.model == "served-m"


async def test_stream_without_usage_reports_unknown() -> None:
    async with make_client(Script(ok_stream())) as c:
        r = await c.chat(MESSAGES)
    assert r.usage == Usage()


# ------------------------------------------------------------------------------------- reasoning
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_read_from_either_field(field: str) -> None:
    script = Script(stream_response(sse(chunk({field: "think "}), chunk({field: "more"}),
                                        chunk({"content": "42"}), chunk({}, "stop"))))
    async with make_client(script) as c:
        r = await c.chat(MESSAGES)
    assert (r.reasoning, r.text) == ("think more", "42")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_in_a_plain_json_answer(field: str) -> None:
    body = {"model": "m", "choices": [{"message": {"content": "42", field: "because"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}, "system_fingerprint": "fp1"}
    async with make_client(Script(httpx.Response(200, json=body))) as c:
        r = await c.chat(MESSAGES)
    assert (r.text, r.reasoning, r.system_fingerprint, r.usage.prompt_tokens) == ("42", "because", "fp1", 3)


# ------------------------------------------------------------------------------------- retries
@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
async def test_retryable_statuses_are_retried(status: int) -> None:
    script = Script(error_body(status), ok_stream("fine"))
    sleeps = Sleeps()
    async with make_client(script, sleeps) as c:
        r = await c.chat(MESSAGES)
    assert (r.text, r.attempts, len(script.requests), len(sleeps.delays)) == ("fine", 2, 2, 1)


async def test_retry_after_seconds_honoured() -> None:
    sleeps = Sleeps()
    script = Script(httpx.Response(429, headers={"retry-after": "3"}, json={}), ok_stream())
    async with make_client(script, sleeps) as c:
        await c.chat(MESSAGES)
    assert sleeps.delays == [3.0]


async def test_retry_after_ms_wins_over_retry_after() -> None:
    sleeps = Sleeps()
    script = Script(httpx.Response(503, headers={"retry-after-ms": "250", "retry-after": "9"}, json={}),
                    ok_stream())
    async with make_client(script, sleeps) as c:
        await c.chat(MESSAGES)
    assert sleeps.delays == [0.25]


@pytest.fixture
def non_utc_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("non_utc_local_time")
def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    delay = retry_after_seconds(httpx.Headers({"retry-after": when}))
    assert delay is not None and 17 < delay <= 20
    minus_zero = email.utils.formatdate(time.time() + 20)  # "... -0000" parses to a naive datetime
    assert 17 < (retry_after_seconds(httpx.Headers({"retry-after": minus_zero})) or 0) <= 20


async def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    sleeps = Sleeps()
    script = Script(httpx.Response(429, headers={"retry-after": "soon"}, json={}), ok_stream())
    async with make_client(script, sleeps) as c:
        r = await c.chat(MESSAGES)
    assert r.attempts == 2
    assert 0.375 <= sleeps.delays[0] <= 0.5


async def test_backoff_doubles_with_jitter_and_gives_up_after_max_retries() -> None:
    sleeps = Sleeps()
    script = Script(error_body(500))
    async with make_client(script, sleeps, max_retries=3) as c:
        with pytest.raises(ServerError) as e:
            await c.chat(MESSAGES)
    assert e.value.status == 500
    assert len(script.requests) == 4
    for n, d in enumerate(sleeps.delays):
        assert 0.75 * 0.5 * 2**n <= d <= 0.5 * 2**n


async def test_rate_limit_after_all_retries_is_a_rate_limit_error() -> None:
    script = Script(error_body(429, "slow down"))
    async with make_client(script, max_retries=1) as c:
        with pytest.raises(RateLimitError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
async def test_permanent_statuses_are_not_retried(status: int) -> None:
    script = Script(error_body(status, "invalid temperature"), ok_stream())
    async with make_client(script) as c:
        with pytest.raises(PermanentError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 1


async def test_connection_errors_are_retried_then_reported() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    script = Script(refuse)
    async with make_client(script, max_retries=2) as c:
        with pytest.raises(EndpointConnectionError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 3


async def test_x_should_retry_true_retries_a_400() -> None:
    script = Script(httpx.Response(400, headers={"x-should-retry": "true"}, json={"error": {"message": "x"}}),
                    ok_stream("ok"))
    async with make_client(script) as c:
        assert (await c.chat(MESSAGES)).attempts == 2


async def test_x_should_retry_false_stops_a_503() -> None:
    script = Script(httpx.Response(503, headers={"x-should-retry": "false"}, json={}), ok_stream())
    async with make_client(script) as c:
        with pytest.raises(ServerError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 1


async def test_x_should_retry_true_never_retries_an_overflow() -> None:
    status, body = overflow_error("openai", prompt=10, max_tokens=5, window=8)
    script = Script(httpx.Response(status, headers={"x-should-retry": "true"}, json=body), ok_stream())
    async with make_client(script) as c:
        with pytest.raises(ContextOverflowError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 1


# ------------------------------------------------------------------------------------- overflow
@pytest.mark.parametrize("shape", ["openai", "vllm", "vllm_old", "sglang", "llamacpp", "tgi"])
def test_overflow_detected_in_every_server_shape(shape: str) -> None:
    status, body = overflow_error(shape, prompt=5000, max_tokens=256, window=4096)  # type: ignore[arg-type]
    err = classify_http_error(status, json.dumps(body))
    assert isinstance(err, ContextOverflowError), body
    assert not err.retryable


def test_overflow_by_code_or_type_alone() -> None:
    assert isinstance(classify_http_error(400, json.dumps({"error": {"message": "no", "code":
                                                                     "context_length_exceeded"}})),
                      ContextOverflowError)
    assert isinstance(classify_http_error(400, json.dumps({"error": {"message": "no", "type":
                                                                     "exceed_context_size_error"}})),
                      ContextOverflowError)


def test_other_400_is_permanent_not_overflow() -> None:
    err = classify_http_error(400, json.dumps({"error": {"message": "temperature must be <= 2", "code": 400}}))
    assert type(err) is PermanentError


@pytest.mark.parametrize("shape", ["openai", "vllm", "vllm_old", "sglang", "llamacpp", "tgi"])
async def test_overflow_is_never_retried(shape: str) -> None:
    status, body = overflow_error(shape, prompt=5000, max_tokens=256, window=4096)  # type: ignore[arg-type]
    script = Script(httpx.Response(status, json=body), ok_stream())
    async with make_client(script) as c:
        with pytest.raises(ContextOverflowError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 1


# ------------------------------------------------------------------------------------- streams
async def test_error_inside_a_200_stream_is_retried() -> None:
    broken = stream_response(sse(chunk({"content": "par"}), {"error": {"message": "engine died", "code": 500}},
                                 done=False))
    script = Script(broken, ok_stream("whole"))
    async with make_client(script) as c:
        r = await c.chat(MESSAGES)
    assert (r.text, r.attempts) == ("whole", 2)


async def test_error_inside_a_200_stream_after_retries_is_a_stream_error() -> None:
    broken = stream_response(sse({"error": {"message": "engine died"}}, done=False))
    async with make_client(Script(broken), max_retries=0) as c:
        with pytest.raises(StreamError, match="engine died"):
            await c.chat(MESSAGES)


async def test_overflow_inside_a_stream_is_an_overflow() -> None:
    _, body = overflow_error("vllm", prompt=5000, max_tokens=1, window=4096)
    script = Script(stream_response(sse(body, done=False)), ok_stream())
    async with make_client(script) as c:
        with pytest.raises(ContextOverflowError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 1


async def test_stream_cut_before_done_is_a_stream_error() -> None:
    cut = stream_response(sse(chunk({"content": "half an ans"}), done=False))
    script = Script(cut)
    async with make_client(script, max_retries=1) as c:
        with pytest.raises(StreamError, match="before \\[DONE\\]"):
            await c.chat(MESSAGES)
    assert len(script.requests) == 2


async def test_keepalive_comments_and_blank_lines_are_skipped() -> None:
    body = sse(": keep-alive\n\n", "\n\n", ": keep-alive\n\n", "event: message\n", chunk({"content": "A"}),
               ": keep-alive\n\n", chunk({"content": "B"}), chunk({}, "stop"))
    async with make_client(Script(stream_response(body))) as c:
        r = await c.chat(MESSAGES)
    assert (r.text, r.finish_reason) == ("AB", "stop")


class SlowStream(httpx.AsyncByteStream):
    """SSE parts with a pause before each one (asyncio.sleep, so the event loop keeps running)."""

    def __init__(self, parts: list[tuple[float, bytes]]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for pause, data in self.parts:
            await asyncio.sleep(pause)
            yield data


async def test_ttft_measured_to_the_first_token_and_to_the_first_content() -> None:
    parts = [(0.0, sse(chunk({"role": "assistant", "content": ""}), done=False)),
             (0.05, sse(chunk({"reasoning_content": "hmm"}), done=False)),
             (0.05, sse(chunk({"content": "yes"}), chunk({}, "stop")))]
    script = Script(lambda req: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                               stream=SlowStream(parts)))
    seen: list[str] = []
    async with make_client(script) as c:
        r = await c.chat(MESSAGES, on_first_token=lambda: seen.append("first"))
    assert r.ttft_s is not None and r.content_ttft_s is not None
    assert 0.05 <= r.ttft_s < r.content_ttft_s <= r.latency_s
    assert r.content_ttft_s >= 0.1
    assert seen == ["first"]


async def test_tool_call_deltas_are_assembled() -> None:
    body = sse(
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "search", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"query": '}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "fetch", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"magic number"}'}}]}),
        chunk({}, "tool_calls"))
    async with make_client(Script(stream_response(body))) as c:
        r = await c.chat(MESSAGES, tools=[{"type": "function", "function": {"name": "search"}}])
    assert r.finish_reason == "tool_calls"
    assert [(t["id"], t["function"]["name"]) for t in r.tool_calls] == [("call_a", "search"), ("call_b", "fetch")]
    assert json.loads(r.tool_calls[0]["function"]["arguments"]) == {"query": "magic number"}
    assert r.ttft_s is not None


# ------------------------------------------------------------------------------------- time limits
async def test_wall_clock_deadline() -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return ok_stream()

    script = Script(stall)
    async with make_client(script, deadline_s=0.1, max_retries=1) as c:
        with pytest.raises(EndpointTimeoutError, match="deadline"):
            await c.chat(MESSAGES)
    assert len(script.requests) == 2


def read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no bytes", request=request)


async def test_timed_out_very_long_prompt_is_retried_at_most_once() -> None:
    script = Script(read_timeout)
    long_prompt = [{"role": "user", "content": "word " * 50_000}]
    async with make_client(script, max_retries=5) as c:
        with pytest.raises(EndpointTimeoutError):
            await c.chat(long_prompt)
    assert len(script.requests) == 2


async def test_timed_out_short_prompt_uses_all_retries() -> None:
    script = Script(read_timeout)
    async with make_client(script, max_retries=3) as c:
        with pytest.raises(EndpointTimeoutError):
            await c.chat(MESSAGES)
    assert len(script.requests) == 4


# ------------------------------------------------------------------------------------- request body
async def test_request_body_and_headers() -> None:
    script = Script(ok_stream())
    async with make_client(script, max_tokens_field="max_completion_tokens", max_output_tokens=77,
                           extra_body={"top_k": 3}, api_key="sk-secret") as c:
        await c.chat(MESSAGES)
    req = script.requests[0]
    body = json.loads(req.content)
    assert req.url.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-secret"
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["top_k"] == 3 and body["temperature"] == 0.0 and body["seed"] == 0


# ------------------------------------------------------------------------------------- embeddings
async def test_embeddings_in_index_order_with_usage() -> None:
    data = {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}
    script = Script(httpx.Response(200, json=data))
    async with make_client(script, embedding_model="emb") as c:
        vectors, usage = await c.embed(["a", "b"])
    assert vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert usage.prompt_tokens == 4
    assert json.loads(script.requests[0].content) == {"model": "emb", "input": ["a", "b"]}


async def test_embeddings_retry_then_refuse_a_short_answer() -> None:
    script = Script(httpx.Response(503, headers={"retry-after": "0"}, json={}),
                    httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0]}]}))
    async with make_client(script) as c:
        with pytest.raises(PermanentError, match="asked for 2, got 1"):
            await c.embed(["a", "b"])
    assert len(script.requests) == 2


async def test_embeddings_not_served_is_permanent() -> None:
    script = Script(httpx.Response(404, json={"detail": "Not Found"}))
    async with make_client(script) as c:
        with pytest.raises(PermanentError):
            await c.embed(["a"])
    assert len(script.requests) == 1


async def test_unsupported_scheme_is_a_classified_error_not_a_crash():
    from evals.client import ModelClient
    from evals.domain import Endpoint
    from evals.errors import PermanentError

    def handler(request):
        raise httpx.UnsupportedProtocol("no such scheme")

    ep = Endpoint(name="x", base_url="http://127.0.0.1:9", model="m", max_retries=3)
    async with ModelClient(ep, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(PermanentError):
            await c.chat([{"role": "user", "content": "hi"}])


async def test_first_token_callback_fires_for_a_tool_call_delta():
    from evals.client import ModelClient
    from evals.domain import Endpoint

    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "search", "arguments": "{}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def handler(request):
        return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    fired = []
    ep = Endpoint(name="x", base_url="http://127.0.0.1:9", model="m")
    async with ModelClient(ep, transport=httpx.MockTransport(handler)) as c:
        resp = await c.chat([{"role": "user", "content": "hi"}], on_first_token=lambda: fired.append(1))
    assert fired == [1] and resp.tool_calls[0]["function"]["name"] == "search"
