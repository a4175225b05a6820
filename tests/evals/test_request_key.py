"""The response cache's request key: the digest of the canonical JSON, computed without a second
copy of a long prompt."""

from __future__ import annotations

import math
import tracemalloc
from decimal import Decimal

import pytest

from evals.cache import request_key
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
