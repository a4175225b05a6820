"""evals.probe and ``ctxeval probe`` against the fake server (thread) and a few scripted transports."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from evals.domain import Endpoint
from evals.probe import ProbeResult, cache_prompt, probe, tokenizer_for
from evals.tokens import ServerTokenizer, local_tokenizer
from tests.fakes.openai_server import FakeServer


def endpoint(server_url: str, **kw: object) -> Endpoint:
    return Endpoint(name="probe", base_url=server_url, model=str(kw.pop("model", "fake-model")), **kw)  # type: ignore[arg-type]


async def test_everything_a_full_featured_server_offers(fake_server: FakeServer) -> None:
    fake_server.configure(reasoning_field="reasoning_content", tool_mode=True, n_ctx_train=131072,
                          max_model_len=16384)
    r = await probe(endpoint(fake_server.base_url))
    assert (r.reachable, r.models_listed, r.served_models) == (True, True, ["fake-model"])
    assert (r.context_window, r.context_window_source, r.training_window) == (16384, "models.max_model_len",
                                                                              131072)
    assert (r.tokenize_works, r.tokenizer) == (True, "server")
    assert (r.chat_works, r.chat_usage, r.stream_works, r.stream_usage) == (True, True, True, True)
    assert r.chat_latency_s is not None and r.ttft_s is not None
    assert (r.served_model_id, r.system_fingerprint, r.reasoning_field) == ("fake-model", "fp_fake",
                                                                            "reasoning_content")
    assert r.cached_tokens_reported is True and r.cached_tokens and r.cached_tokens > 1000
    assert (r.embeddings_work, r.embedding_dim, r.tool_calls_work) == (True, 64, True)
    assert r.errors == {}


async def test_a_bare_server_without_props_tokenize_usage_or_embeddings(fake_server: FakeServer) -> None:
    fake_server.configure(disabled_paths=["/props", "/tokenize", "/v1/embeddings"], list_max_model_len=False,
                          usage_shape="none", system_fingerprint=None)
    r = await probe(endpoint(fake_server.base_url, tokenizer="auto"))
    assert (r.reachable, r.chat_works, r.stream_works) == (True, True, True)
    assert (r.context_window, r.context_window_source) == (None, None)
    assert (r.tokenize_works, r.tokenizer) == (False, "cl100k")
    assert (r.chat_usage, r.stream_usage, r.cached_tokens_reported) == (False, False, None)
    assert (r.embeddings_work, r.embedding_dim, r.tool_calls_work) == (False, None, False)
    assert (r.reasoning_field, r.system_fingerprint) == (None, None)
    assert set(r.errors) == {"props", "tokenize", "embeddings"}
    assert "404" in r.errors["props"]


async def test_window_from_llamacpp_props(fake_server: FakeServer) -> None:
    fake_server.configure(list_max_model_len=False, max_model_len=4096, usage_shape="llamacpp")
    r = await probe(endpoint(fake_server.base_url))
    assert (r.context_window, r.context_window_source) == (4096, "props.n_ctx")
    assert r.cached_tokens_reported is True  # from timings.cache_n


@pytest.mark.parametrize("shape", ["deepseek", "openai"])
async def test_cached_tokens_field_that_stays_zero(fake_server: FakeServer, shape: str) -> None:
    fake_server.configure(usage_shape=shape, cache_block=100_000)  # the fake never finds a cached block
    r = await probe(endpoint(fake_server.base_url))
    assert (r.cached_tokens_reported, r.cached_tokens) == (False, 0)


async def test_unreachable_port_fails_soft() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = await probe(endpoint(f"http://127.0.0.1:{port}"))
    assert (r.reachable, r.models_listed, r.chat_works) == (False, False, False)
    assert "cannot reach" in r.errors["models"]
    assert set(r.errors) == {"models"}


async def test_failing_chats_are_noted_per_check(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"status": 500}] * 20)
    r = await probe(endpoint(fake_server.base_url, max_retries=0))
    assert r.reachable and r.tokenize_works and r.context_window == 32768
    assert (r.chat_works, r.stream_works, r.embeddings_work, r.tool_calls_work) == (False, False, False, False)
    assert {"chat", "stream", "prompt_cache", "embeddings", "tools"} <= set(r.errors)
    assert all(r.errors[k].startswith("server_error: HTTP 500: ") for k in ("chat", "stream"))


async def test_pick_the_first_listed_model(fake_server: FakeServer) -> None:
    fake_server.configure(served_models=["alpha", "beta"])
    r = await probe(endpoint(fake_server.base_url, model="default"), pick_model=True)
    assert (r.model, r.served_models) == ("alpha", ["alpha", "beta"])
    models = {e["model"] for e in fake_server.stats()["log"] if e["path"] == "/v1/chat/completions"}
    assert models == {"alpha"}


async def test_the_api_key_never_appears_in_error_notes() -> None:
    def echo_auth(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"message": f"key {request.headers['authorization']} denied"}})

    r = await probe(endpoint("http://model.test", api_key="sk-very-secret"),
                    transport=httpx.MockTransport(echo_auth))
    assert r.reachable and r.errors
    assert "sk-very-secret" not in r.model_dump_json()
    assert "***" in r.errors["models"]


def test_cache_prompt_is_about_1200_tokens() -> None:
    text = "\n".join(m["content"] for m in cache_prompt())
    assert 1000 <= local_tokenizer("cl100k").count(text) <= 1500


async def test_tokenizer_for_uses_the_server_when_it_tokenizes(fake_server: FakeServer) -> None:
    ep = endpoint(fake_server.base_url)
    found = await probe(ep)
    tok = tokenizer_for(ep, found)
    assert isinstance(tok, ServerTokenizer)
    try:
        text = "The special magic number is: 7."
        assert tok.count(text) == 8 != local_tokenizer("cl100k").count(text)  # the fake's word pieces
    finally:
        tok.close()
    fallback = tokenizer_for(ep, ProbeResult(base_url=ep.base_url, model=ep.model, tokenize_works=False))
    assert fallback.name == "cl100k"


# ------------------------------------------------------------------------------------- the command
def test_cli_prints_json_and_never_the_key(fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server.configure(api_key="sk-cli-secret", served_models=["served-one"])
    monkeypatch.setenv("PROBE_KEY", "sk-cli-secret")
    result = CliRunner().invoke(cli, ["probe", "--base-url", f"{fake_server.url}/", "--api-key-env", "PROBE_KEY"])
    assert result.exit_code == 0, result.output
    assert "sk-cli-secret" not in result.output
    data = json.loads(result.output)
    assert (data["model"], data["chat_works"], data["base_url"]) == ("served-one", True, fake_server.base_url)


def test_cli_with_a_model_and_a_missing_key_variable(fake_server: FakeServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    missing = CliRunner().invoke(cli, ["probe", "--base-url", fake_server.base_url, "--api-key-env",
                                       "NO_SUCH_KEY_VAR"])
    assert missing.exit_code == 2 and "NO_SUCH_KEY_VAR" in missing.output
    named = CliRunner().invoke(cli, ["probe", "--base-url", fake_server.base_url, "--model", "mine"])
    assert named.exit_code == 0 and json.loads(named.output)["model"] == "mine"


def test_cli_unreachable_and_bad_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = CliRunner().invoke(cli, ["probe", "--base-url", f"http://127.0.0.1:{port}", "--timeout", "2"])
    assert down.exit_code == 1 and json.loads(down.output)["reachable"] is False
    bad = CliRunner().invoke(cli, ["probe", "--base-url", "localhost:8000"])
    assert bad.exit_code == 2 and "base_url must start with http" in bad.output
