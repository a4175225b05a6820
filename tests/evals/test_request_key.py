"""The response cache's request key: the digest of the canonical JSON, computed without a second
copy of a long prompt."""

from __future__ import annotations

import math
import tracemalloc
from decimal import Decimal

import pytest

from evals.cache import request_key
from evals.domain import _HASH_SLICE as SLICE
from evals.domain import stable_hash, streaming_hash

LONG = ("Ünïcödé ✓ \"quoted\" back\\slash\nnew line\ttab \x01 control " * 30_000)


@pytest.mark.parametrize("value", [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0, "max_tokens": 16},
    {"b": 1, "a": [1, 2.5, -3e-9, True, False, None], "c": {"z": "é", "y": "\u2028"}},
    {"content": LONG, "stream": True, "n": 10**30, "x": math.inf, "y": -math.inf},
    ["http://127.0.0.1/v1", {"messages": [{"role": "system", "content": LONG[:70_000]},
                                          {"role": "user", "content": LONG}]}],
    {"odd": Decimal("1.5"), "keys": {2: "int key", 1: "another"}, "t": (1, 2)},
    "x" * 200_000, [], {}, "", 0, None,
])
def test_the_streaming_digest_equals_the_canonical_one(value):
    assert streaming_hash(value) == stable_hash(value)


def test_nan_hashes_as_json_writes_it():
    assert streaming_hash({"v": math.nan}) == stable_hash({"v": math.nan})


def test_a_long_prompt_is_hashed_without_a_second_copy():
    content = "d" * 4_000_000
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    key = stable_hash(["http://x/v1", body])
    tracemalloc.start()
    try:
        assert request_key("http://x/v1/", body) == key  # a trailing slash names the same server
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # the JSON dump alone would be 4 MB, its UTF-8 bytes 4 MB more


def test_many_short_strings_that_add_up_to_a_long_prompt_are_hashed_without_a_second_copy():
    # no single string is long, their sum is: the small-value shortcut must count them all
    body = {"model": "m", "messages": [{"role": "user", "content": "p" * 40_000} for _ in range(100)]}
    key = stable_hash(["http://x/v1", body])
    tracemalloc.start()
    try:
        assert request_key("http://x/v1", body) == key
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("size", [SLICE - 3, SLICE - 2, SLICE - 1, SLICE, SLICE + 1])
def test_values_at_the_edge_of_the_small_value_shortcut_hash_as_the_canonical_form(size):
    value = {"k": "é" * (size - 1)}  # one character of key plus size - 1 of value
    assert streaming_hash(value) == stable_hash(value)
    assert streaming_hash([value, "x"]) == stable_hash([value, "x"])


def test_a_short_request_is_hashed_as_one_json_text(monkeypatch):
    import evals.domain as domain

    def piecewise(*_):
        raise AssertionError("a short request was fed to sha256 piece by piece")

    monkeypatch.setattr(domain, "_feed", piecewise)
    body = {"model": "m", "messages": [{"role": "user", "content": "q" * 5_000}], "stream": True}
    assert request_key("http://x/v1", body) == stable_hash(["http://x/v1", body])


async def test_without_a_response_cache_no_request_key_is_computed(monkeypatch):
    import httpx

    import evals.strategies.base as base
    from evals.cache import MemoryCache
    from evals.client import ModelClient
    from evals.domain import Endpoint

    keys: list[str] = []

    def counted(base_url, body):
        keys.append(base_url)
        return request_key(base_url, body)

    monkeypatch.setattr(base, "request_key", counted)
    sse = (b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
           b"data: [DONE]\n\n")
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=sse,
                                                             headers={"content-type": "text/event-stream"}))
    ep = Endpoint(name="t", base_url="http://model.test", model="m")
    messages = [{"role": "user", "content": "Say hi."}]
    async with ModelClient(ep, transport=transport) as client:
        assert (await base.LLM(client, None).chat(messages)).text == "hi"
        assert keys == []  # nothing to look up, nothing to store
        cache = MemoryCache()
        assert (await base.LLM(client, cache).chat(messages)).text == "hi"
        assert len(keys) == 1 and len(cache) == 1
        assert (await base.LLM(client, cache).chat(messages)).text == "hi"  # the same request, from the cache
        assert len(keys) == 2 and len(cache) == 1
