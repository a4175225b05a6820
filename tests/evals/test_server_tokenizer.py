"""ServerTokenizer speaks both llama.cpp's ``/tokenize`` and llama-cpp-python's ``/extras/tokenize``."""

from __future__ import annotations

import json

import httpx
import pytest

from evals.errors import TokenizerError
from evals.tokens import ServerTokenizer

VOCAB = {"hello": 1, "world": 2, "again": 3}


def word_ids(text: str) -> list[int]:
    return [VOCAB[w] for w in text.split()]


def words(ids: list[int]) -> str:
    inverse = {v: k for k, v in VOCAB.items()}
    return " ".join(inverse[i] for i in ids)


def llama_cpp_python_server(calls: list[str]) -> httpx.MockTransport:
    """The shapes of llama-cpp-python's server: 404 on /tokenize, ``input``/``text`` under /extras."""

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        body = json.loads(request.content)
        if request.url.path == "/extras/tokenize":
            return httpx.Response(200, json={"tokens": word_ids(body["input"])})
        if request.url.path == "/extras/detokenize":
            return httpx.Response(200, json={"text": words(body["tokens"])})
        return httpx.Response(404, json={"detail": "Not Found"})

    return httpx.MockTransport(handle)


def llama_cpp_server(calls: list[str]) -> httpx.MockTransport:
    """The shapes of llama.cpp's server: ``content`` in, ``tokens`` out; ``/detokenize`` gives ``content``."""

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        body = json.loads(request.content)
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": word_ids(body["content"])})
        if request.url.path == "/detokenize":
            return httpx.Response(200, json={"content": words(body["tokens"])})
        return httpx.Response(404)

    return httpx.MockTransport(handle)


def test_falls_back_to_extras_tokenize_and_remembers_it() -> None:
    calls: list[str] = []
    tok = ServerTokenizer("http://127.0.0.1:9/v1", "m", transport=llama_cpp_python_server(calls))
    assert tok.encode("hello world") == [1, 2]
    assert tok.count("hello world again") == 3
    assert tok.decode([3, 1]) == "again hello"
    assert calls == ["/tokenize", "/extras/tokenize", "/extras/tokenize", "/extras/detokenize"]


def test_llama_cpp_tokenize_is_used_first() -> None:
    calls: list[str] = []
    tok = ServerTokenizer("http://127.0.0.1:9", "m", transport=llama_cpp_server(calls))
    assert tok.encode("world hello") == [2, 1]
    assert tok.decode([1, 2]) == "hello world"
    assert calls == ["/tokenize", "/detokenize"]


def test_a_server_without_tokenize_is_a_tokenizer_error() -> None:
    tok = ServerTokenizer("http://127.0.0.1:9", "m",
                          transport=httpx.MockTransport(lambda request: httpx.Response(404)))
    with pytest.raises(TokenizerError, match="/extras/tokenize"):
        tok.count("hello")


def test_a_server_error_is_not_mistaken_for_a_missing_path() -> None:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500, text="boom")

    tok = ServerTokenizer("http://127.0.0.1:9", "m", transport=httpx.MockTransport(handle))
    with pytest.raises(TokenizerError, match="/tokenize failed"):
        tok.encode("hello")
    assert calls == ["/tokenize"]
