"""evals.client over a real socket: streaming against the fake server in a thread."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from evals.client import ModelClient, shared_ssl_context
from evals.domain import Endpoint
from evals.errors import ContextOverflowError, PermanentError, StreamError
from tests.fakes.openai_server import FakeServer

NEEDLE = ("The special magic number for foo is: 1234567. The special magic number for bar is: 42. "
          "The capital of Freedonia is Fredville.")


def ask(question: str, context: str = NEEDLE) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Answer from the context."},
            {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}\nAnswer:"}]


def client(server: FakeServer, **kw: Any) -> ModelClient:
    kw.setdefault("max_retries", 2)
    return ModelClient(Endpoint(name="fake", base_url=server.base_url, model="fake-model", **kw),
                       sleep=_no_sleep)


async def _no_sleep(seconds: float) -> None:
    return None


async def test_streamed_answer_from_context_with_usage(fake_server: FakeServer) -> None:
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
        other = await c.chat(ask("What is the capital of Freedonia?"))
        none = await c.chat(ask("What is the special magic number for foo?", context="Nothing here."))
    assert (r.text, other.text, none.text) == ("1234567", "Fredville", "unanswerable")
    assert r.finish_reason == "stop" and r.system_fingerprint == "fp_fake"
    assert r.usage.prompt_tokens and r.usage.completion_tokens == 1
    assert r.ttft_s is not None and r.attempts == 1


async def test_ttft_reflects_time_to_first_token(fake_server: FakeServer) -> None:
    fake_server.configure(first_token_latency_s=0.1, token_latency_s=0.02)
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the capital of Freedonia?", "The capital of Freedonia is: Fred Ville North."))
    assert r.text == "Fred Ville North"
    # lower bounds the server sets (first token after 0.1 s, two more 0.02 s apart); a busy client may
    # read the first token late, so the gap between TTFT and the end is not bounded below
    assert r.ttft_s is not None and 0.1 <= r.ttft_s <= r.latency_s
    assert r.latency_s >= 0.1 + 0.04


@pytest.mark.parametrize("shape", ["openai", "deepseek", "llamacpp"])
async def test_cached_tokens_reported_in_each_usage_shape(fake_server: FakeServer, shape: str) -> None:
    fake_server.configure(usage_shape=shape)
    long_context = " ".join(f"Filler sentence number {i} about nothing." for i in range(60)) + NEEDLE
    async with client(fake_server) as c:
        first = await c.chat(ask("What is the special magic number for foo?", long_context))
        second = await c.chat(ask("What is the special magic number for bar?", long_context))
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens is not None
    assert 300 < second.usage.cached_tokens < second.usage.prompt_tokens  # shared prefix, new question
    assert second.text == "42"


async def test_usage_unknown_when_the_server_reports_none(fake_server: FakeServer) -> None:
    fake_server.configure(usage_shape="none")
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert r.text == "1234567"
    assert (r.usage.prompt_tokens, r.usage.cached_tokens) == (None, None)


async def test_no_streamed_usage(fake_server: FakeServer) -> None:
    fake_server.configure(stream_usage=False)
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert r.usage.prompt_tokens is None


@pytest.mark.parametrize("shape", ["openai", "vllm", "vllm_old", "sglang", "llamacpp", "tgi"])
async def test_overflow_from_the_server_in_each_shape(fake_server: FakeServer, shape: str) -> None:
    fake_server.configure(max_model_len=64, overflow_shape=shape)
    async with client(fake_server, max_output_tokens=32) as c:
        with pytest.raises(ContextOverflowError):
            await c.chat(ask("What is the special magic number for foo?"))
        fits = await c.chat([{"role": "user", "content": "Question: hello?"}])
    assert fits.text == "unanswerable"
    assert fake_server.stats()["by_path"]["/v1/chat/completions"] == 2  # the overflow was not retried


@pytest.mark.parametrize("fault", [{"status": 429, "retry_after": 0.01}, {"status": 500}, {"kind": "truncate"},
                                   {"kind": "stream_error"}])
async def test_scripted_faults_are_retried(fake_server: FakeServer, fault: dict[str, Any]) -> None:
    fake_server.configure(faults=[fault])
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert (r.text, r.attempts) == ("1234567", 2)
    assert [e["fault"] for e in fake_server.stats()["log"]] == [str(fault.get("status", fault.get("kind"))), None]


async def test_read_timeout_then_success(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"kind": "timeout"}])  # stalls 30 s; the client gives up after 0.3 s
    async with client(fake_server, timeout_s=0.3) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert (r.text, r.attempts) == ("1234567", 2)


async def test_truncated_stream_every_time_is_a_stream_error(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"kind": "truncate"}] * 3)
    async with client(fake_server) as c:
        with pytest.raises(StreamError):
            await c.chat(ask("What is the special magic number for foo?"))
    assert fake_server.stats()["faults_pending"] == 0


async def test_keepalive_lines_before_content(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"kind": "keepalive"}])
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert (r.text, r.attempts) == ("1234567", 1)


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_reasoning_deltas(fake_server: FakeServer, field: str) -> None:
    fake_server.configure(reasoning_field=field)
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert r.text == "1234567"
    assert r.reasoning.startswith("The question is: What is the special magic number for foo?")
    assert r.usage.reasoning_tokens == r.usage.completion_tokens - 1
    assert r.content_ttft_s is not None and r.ttft_s is not None and r.ttft_s <= r.content_ttft_s


async def test_reasoning_that_uses_the_whole_budget_leaves_no_content(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"kind": "empty_content"}])
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"))
    assert (r.text, r.finish_reason) == ("", "length")
    assert r.reasoning


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_honoured(fake_server: FakeServer, field: str) -> None:
    async with client(fake_server, max_tokens_field=field, max_output_tokens=2) as c:
        r = await c.chat(ask("What is the capital of Freedonia?",
                             "The capital of Freedonia is: Fred Ville North Upon Sea."))
    assert (r.text, r.finish_reason, r.usage.completion_tokens) == ("Fred Ville", "length", 2)


async def test_native_tool_call(fake_server: FakeServer) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    fake_server.configure(tool_mode=True)
    async with client(fake_server) as c:
        r = await c.chat(ask("What is the special magic number for foo?"), tools=tools)
        scripted = None
        fake_server.configure(tool_mode=False, faults=[{"kind": "tool_call", "name": "lookup",
                                                        "arguments": {"id": 7, "deep": True}}])
        scripted = await c.chat(ask("anything"))
    assert r.finish_reason == "tool_calls" and r.text == ""
    assert r.tool_calls[0]["function"]["name"] == "search"
    assert r.tool_calls[0]["function"]["arguments"] == '{"query": "What is the special magic number for foo?"}'
    assert scripted.tool_calls[0]["function"] == {"name": "lookup", "arguments": '{"id": 7, "deep": true}'}


async def test_non_streamed_request(fake_server: FakeServer) -> None:
    async with client(fake_server) as c:
        body = c.chat_body(ask("What is the special magic number for bar?"), stream=False)
        r = await c.chat([], body=body)
    assert (r.text, r.ttft_s, r.usage.cached_tokens) == ("42", None, 0)


async def test_embeddings(fake_server: FakeServer) -> None:
    async with client(fake_server) as c:
        vectors, usage = await c.embed(["magic number foo", "the magic number for foo", "capital of Freedonia"])
    assert all(len(v) == 64 for v in vectors)
    near = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    far = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert near > 0.99 and far < near
    assert usage.prompt_tokens == 3 + 5 + 3


async def test_wrong_api_key_is_permanent(fake_server: FakeServer) -> None:
    fake_server.configure(api_key="right")
    async with client(fake_server, api_key="wrong") as c:
        with pytest.raises(PermanentError) as e:
            await c.chat(ask("x?"))
    assert e.value.status == 401
    async with client(fake_server, api_key="right") as c:
        assert (await c.chat(ask("What is the special magic number for foo?"))).text == "1234567"


async def test_concurrent_streams_share_one_client(fake_server: FakeServer) -> None:
    fake_server.configure(first_token_latency_s=0.05)
    async with client(fake_server) as c:
        results = await asyncio.gather(*(c.chat(ask("What is the special magic number for foo?"))
                                         for _ in range(5)))
    assert {r.text for r in results} == {"1234567"}
    stats = fake_server.stats()
    assert stats["max_in_flight"] >= 2 and stats["in_flight"] == 0


async def test_connection_is_reused_after_a_stream_ends(fake_server: FakeServer) -> None:
    """The body is read to its end after [DONE], so sequential cases share one keep-alive connection."""
    async with client(fake_server) as c:
        for _ in range(3):
            r = await c.chat(ask("What is the capital of Freedonia?"))
            assert r.text == "Fredville"
        assert c._clients == [c._http]  # sequential requests take the same slot client
        pool = c._http._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1
        assert pool.connections[0].is_idle()


async def test_each_request_in_flight_holds_a_client_with_one_connection(fake_server: FakeServer) -> None:
    """httpcore's pool scans all its connections on every request, so no pool holds more than one: a
    request in flight takes a slot client, and gives it back (warm) when it ends."""
    fake_server.configure(first_token_latency_s=0.05)
    async with client(fake_server, concurrency=64) as c:
        answers = await asyncio.gather(*(c.chat(ask("What is the capital of Freedonia?")) for _ in range(8)))
        assert {a.text for a in answers} == {"Fredville"}
        assert len(c._clients) == 8 and len(c._free) == 8
        used = [len(p._transport._pool.connections) for p in c._clients]  # type: ignore[attr-defined]
        assert used == [1] * 8
        again = await asyncio.gather(*(c.chat(ask("What is the capital of Freedonia?")) for _ in range(8)))
        assert {a.text for a in again} == {"Fredville"}
        assert len(c._clients) == 8  # the second wave reused the first wave's clients and connections
        assert [len(p._transport._pool.connections) for p in c._clients] == [1] * 8  # type: ignore[attr-defined]


def test_clients_share_one_tls_context() -> None:
    """Building a TLS context costs about 20 ms: every pool of every client uses the process's one."""
    a = ModelClient(Endpoint(name="a", base_url="https://a.example/v1", model="m"))
    b = ModelClient(Endpoint(name="b", base_url="https://b.example/v1", model="m", concurrency=64))
    contexts = {id(p._transport._pool._ssl_context) for x in (a, b) for p in x._clients}  # type: ignore[attr-defined]
    assert contexts == {id(shared_ssl_context())}
