"""The fake OpenAI-compatible server itself: its model, routes, controls, and both ways to run it."""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import httpx
import pytest

from evals.tokens import ServerTokenizer, truncate_tokens
from tests.fakes import fake_model as fm
from tests.fakes.openai_server import FakeConfig, FakeServer, run_in_subprocess, run_in_thread


def chat(server: FakeServer, messages: list[dict[str, Any]], **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/chat/completions", json={"model": "m", "messages": messages, **body},
                      timeout=10)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# ------------------------------------------------------------------------------------- the model
def test_answer_is_taken_from_the_best_overlapping_sentence() -> None:
    context = ("The special magic number for bar is: 42. The special magic number for foo is: 1234567.\n"
               "The capital of Freedonia is Fredville.")
    assert fm.answer("What is the special magic number for foo?", context) == "1234567"
    assert fm.answer("What is the capital of Freedonia?", context) == "Fredville"
    assert fm.answer("Who wrote Hamlet?", context) == "unanswerable"


def test_the_best_sentence_must_share_four_fifths_of_the_questions_words() -> None:
    context = "The special magic number for lisbon is: 4418203. The harbour master counts ships."
    assert fm.answer("What is the special magic number for lisbon?", context) == "4418203"  # 4 of 4
    assert fm.answer("What is the special magic number for oslo?", context) == "unanswerable"  # 3 of 4
    # 4 of 5 words is enough, 4 of 6 is not
    assert fm.answer("Which special magic number is for the harbour of lisbon?", context) == "4418203"
    assert fm.answer("Which special magic number for lisbon harbour ships?", context) == "unanswerable"
    # an instruction after the question mark asks nothing
    assert fm.answer("What is the special magic number for lisbon? Don't give information outside the "
                     "document or repeat your findings.", context) == "4418203"


def test_question_split_from_the_last_user_message() -> None:
    messages = [{"role": "system", "content": "The colour of the sky is: blue."},
                {"role": "user", "content": "Question: ignored earlier?"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "Notes: the colour of grass is: green.\nQuestion: What is the "
                                            "colour of the sky?\nAnswer:"}]
    question, context = fm.split_prompt(messages)
    assert question == "What is the colour of the sky?"
    assert "grass" in context and "Answer:" not in context
    assert fm.answer_messages(messages) == "blue"
    assert fm.answer_messages(user("The sky is blue.")) == "unanswerable"  # no context at all


def test_tokens_round_trip_and_count() -> None:
    text = "The number is: 3.14, see  (A-1)!"
    tokens = fm.tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:4] == ["The", " number", " is", ":"]
    assert fm.prompt_tokens(user("two words")) == ["<|user|>", "two", " words"]


def test_embeddings_are_normalised_and_closer_when_words_are_shared() -> None:
    a, b, c = fm.embed("magic number of foo"), fm.embed("foo has a magic number"), fm.embed("Freedonia capital")
    assert len(a) == 64 and math.isclose(sum(x * x for x in a), 1.0)
    dot = lambda u, v: sum(x * y for x, y in zip(u, v, strict=True))  # noqa: E731
    assert dot(a, b) > 0.99 > dot(a, c)
    assert fm.embed("the of and") == [1.0] + [0.0] * 63


# ------------------------------------------------------------------------------------- routes
def test_models_props_and_health(fake_server: FakeServer) -> None:
    fake_server.configure(max_model_len=8192, n_ctx_train=131072, served_models=["a", "b"])
    models = httpx.get(f"{fake_server.url}/models").json()["data"]
    assert [(m["id"], m["max_model_len"], m["meta"]["n_ctx_train"]) for m in models] == [
        ("a", 8192, 131072), ("b", 8192, 131072)]
    props = httpx.get(f"{fake_server.base_url}/props").json()
    assert props["default_generation_settings"]["n_ctx"] == 8192
    assert httpx.get(f"{fake_server.base_url}/health").json() == {"status": "ok"}
    fake_server.configure(list_max_model_len=False)
    assert "max_model_len" not in httpx.get(f"{fake_server.url}/models").json()["data"][0]


def test_tokenize_shapes(fake_server: FakeServer) -> None:
    vllm = httpx.post(f"{fake_server.base_url}/tokenize", json={"model": "m", "prompt": "Hello, world"}).json()
    assert vllm["count"] == 3 and vllm["max_model_len"] == 32768 and len(vllm["tokens"]) == 3
    llama = httpx.post(f"{fake_server.base_url}/tokenize", json={"content": "Hello, world"}).json()
    assert llama == {"tokens": vllm["tokens"]}
    chat_form = httpx.post(f"{fake_server.base_url}/tokenize",
                           json={"model": "m", "messages": user("Hello, world")}).json()
    assert chat_form["count"] == 4  # the role token too
    detok = httpx.post(f"{fake_server.base_url}/detokenize", json={"model": "m", "tokens": vllm["tokens"]})
    assert detok.json() == {"prompt": "Hello, world"}
    assert httpx.post(f"{fake_server.base_url}/detokenize",
                      json={"tokens": vllm["tokens"]}).json() == {"content": "Hello, world"}


def test_server_tokenizer_of_the_engine_works_against_it(fake_server: FakeServer) -> None:
    tok = ServerTokenizer(fake_server.url, "m")
    try:
        text = "One two three four five six."
        assert tok.count(text) == 7
        assert tok.decode(tok.encode(text)) == text
        kept, dropped = truncate_tokens(tok, text, 3, "head")
        assert (kept, dropped) == ("One two three", 4)
    finally:
        tok.close()


def test_disabled_paths_and_api_key(fake_server: FakeServer) -> None:
    fake_server.configure(disabled_paths=["/props", "/tokenize"], api_key="k")
    assert httpx.get(f"{fake_server.base_url}/props").status_code == 404
    assert httpx.post(f"{fake_server.base_url}/tokenize", json={"prompt": "x"}).status_code == 404
    assert httpx.get(f"{fake_server.url}/models").status_code == 401
    assert httpx.get(f"{fake_server.url}/models", headers={"Authorization": "Bearer k"}).status_code == 200


def test_control_refuses_a_bad_config(fake_server: FakeServer) -> None:
    with pytest.raises(ValueError, match="usage_shape"):
        fake_server.configure(usage_shape="martian")
    with pytest.raises(ValueError, match="exactly one"):
        fake_server.configure(faults=[{"status": 500, "kind": "truncate"}])
    assert fake_server.configure(max_model_len=10).max_model_len == 10


def test_overflow_counts_prompt_and_max_tokens(fake_server: FakeServer) -> None:
    fake_server.configure(max_model_len=10, overflow_shape="llamacpp")
    assert chat(fake_server, user("one two three"), max_tokens=6).status_code == 200  # 4 + 6 fits
    r = chat(fake_server, user("one two three"), max_tokens=7)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "exceed_context_size_error"
    assert r.json()["error"]["n_prompt_tokens"] == 4
    fake_server.configure(overflow_shape="tgi")
    assert chat(fake_server, user("one two three"), max_completion_tokens=7).status_code == 422


def test_non_streamed_faults(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"kind": "truncate"}, {"kind": "stream_error"}, {"kind": "keepalive"},
                                  {"status": 503, "retry_after_ms": 20, "headers": {"x-should-retry": "true"}}])
    messages = user("The colour of the sky is: blue.\nQuestion: What colour is the sky?")
    with pytest.raises(json.JSONDecodeError):
        json.loads(chat(fake_server, messages).text)
    assert "error" in chat(fake_server, messages).json()
    kept = chat(fake_server, messages)
    assert kept.text.startswith("\n") and kept.json()["choices"][0]["message"]["content"] == "blue"
    failed = chat(fake_server, messages)
    assert failed.status_code == 503
    assert (failed.headers["retry-after-ms"], failed.headers["x-should-retry"]) == ("20", "true")
    assert chat(fake_server, messages).status_code == 200


def test_prompt_marker_scripts_a_fault_per_request(fake_server: FakeServer) -> None:
    always = user("FAKE_FAULT:500 Question: anything?")
    assert [chat(fake_server, always).status_code for _ in range(2)] == [500, 500]
    twice = user("FAKE_FAULT:429*2 Question: anything?")
    assert [chat(fake_server, twice).status_code for _ in range(3)] == [429, 429, 200]
    truncated = httpx.post(f"{fake_server.url}/chat/completions", timeout=10, json={
        "model": "m", "stream": True, "messages": user("FAKE_FAULT:truncate The sky is: blue.\nQuestion: sky?")})
    assert "[DONE]" not in truncated.text


def test_stats_log_and_concurrency(fake_server: FakeServer) -> None:
    fake_server.configure(first_token_latency_s=0.4)
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(chat(fake_server, user("hi?")).status_code))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    httpx.get(f"{fake_server.url}/models")
    stats = fake_server.stats()
    assert codes == [200] * 4
    assert stats["requests"] == 5
    assert stats["by_path"] == {"/v1/chat/completions": 4, "/v1/models": 1}
    assert stats["max_in_flight"] == 4 and stats["in_flight"] == 0
    assert [e["prompt_tokens"] for e in stats["log"]] == [3, 3, 3, 3, None]
    assert stats["log"][-1]["path"] == "/v1/models"
    fake_server.reset()
    assert fake_server.stats()["requests"] == 0


def test_cached_prefix_counts_whole_shared_blocks() -> None:
    from tests.fakes.state import FakeState

    state = FakeState(FakeConfig(cache_block=4))
    first = [f"t{i}" for i in range(10)]
    assert state.cached_prefix(first) == 0
    assert state.cached_prefix(first) == 8  # two whole blocks of four
    assert state.cached_prefix(first[:5] + ["other"] * 5) == 4
    assert state.cached_prefix(["other"] * 10) == 0


def test_embedding_faults_and_bad_input(fake_server: FakeServer) -> None:
    fake_server.configure(faults=[{"status": 429, "retry_after": 0.5}])
    url = f"{fake_server.url}/embeddings"
    limited = httpx.post(url, json={"model": "e", "input": "x"})
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "0.5")
    ok = httpx.post(url, json={"model": "e", "input": "x"}).json()
    assert ok["data"][0]["index"] == 0 and len(ok["data"][0]["embedding"]) == 64
    assert httpx.post(url, json={"model": "e", "input": [1, 2]}).status_code == 400


# ------------------------------------------------------------------------------------- running
def test_thread_servers_are_independent() -> None:
    with run_in_thread(FakeConfig(model="one")) as a, run_in_thread(FakeConfig(model="two")) as b:
        assert a.port != b.port
        assert httpx.get(f"{a.url}/models").json()["data"][0]["id"] == "one"
        assert httpx.get(f"{b.url}/models").json()["data"][0]["id"] == "two"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{a.base_url}/health")


def test_subprocess_server_with_flags_and_restart_on_the_same_port() -> None:
    config = FakeConfig(max_model_len=4096, usage_shape="deepseek")
    with run_in_subprocess(config) as server:
        assert server.process is not None and server.process.pid
        assert httpx.get(f"{server.url}/models").json()["data"][0]["max_model_len"] == 4096
        r = chat(server, user("The colour of the sky is: blue.\nQuestion: What colour is the sky?")).json()
        assert r["choices"][0]["message"]["content"] == "blue"
        assert "prompt_cache_hit_tokens" in r["usage"]
        server.configure(max_model_len=100)
        assert server.stats()["by_path"]["/v1/chat/completions"] == 1
        port = server.port
    with run_in_subprocess(config, port=port) as again:
        assert again.port == port
        assert httpx.get(f"{again.url}/models").json()["data"][0]["max_model_len"] == 4096


def test_command_line_flags_build_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import openai_server

    seen: dict[str, Any] = {}
    monkeypatch.setattr(openai_server, "serve_forever",
                        lambda app, host, port: seen.update(config=app.state.fake.config, port=port))
    openai_server.main(["--port", "0", "--latency-ms", "250", "--max-model-len", "2048", "--overflow-shape",
                        "sglang", "--reasoning-field", "reasoning", "--tool-mode"])
    cfg = seen["config"]
    assert (cfg.first_token_latency_s, cfg.max_model_len, cfg.overflow_shape) == (0.25, 2048, "sglang")
    assert (cfg.reasoning_field, cfg.tool_mode, seen["port"]) == ("reasoning", True, 0)
