"""The engine against hostile endpoints and inputs: keys stay where they were given and out of every
message, answers are bounded, every malformed shape has its error class, input limits hold."""

from __future__ import annotations

import json
import re
import tracemalloc

import httpx
import pytest

from evals.client import MIN_ANSWER_CHARS, ModelClient, answer_limit, classify_http_error
from evals.domain import Document, Endpoint, Question, StrategySpec, Suite
from evals.errors import AnswerTooLongError, MalformedResponseError, UserInputError
from evals.limits import (
    MAX_DEPTH,
    STRATEGY_KEY_MAX,
    LimitError,
    load_yaml,
    loads_json,
)
from evals.probe import NOTE_CHARS, probe
from evals.redact import scrub
from evals.runner import Engine, make_spec, plan_cases
from evals.suites.io import parse_suite
from tests.fakes.hostile import hostile_server

KEY = "sk-LEAKCHECK-7f3a9c2e1d5b"


def endpoint(base_url: str, **kw: object) -> Endpoint:
    data: dict[str, object] = dict(name="hostile", base_url=base_url, model="m", api_key=KEY, max_retries=0,
                                   max_output_tokens=16, timeout_s=10.0, deadline_s=30.0)
    data.update(kw)
    return Endpoint.model_validate(data)


def tiny_suite() -> Suite:
    return Suite(name="tiny", documents=[Document(id="d", text="The answer is 42.")],
                 questions=[Question(id="q", question="What is the answer?", answers=["42"])])


async def one_case(ep: Endpoint, strategy: str = "no_context"):  # type: ignore[no-untyped-def]
    suite = tiny_suite()
    spec = make_spec(suite, [ep], [StrategySpec(name=strategy)], ["exact_match"])
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec) as engine:
        return await engine.execute(plan_cases(spec, suite)[0])


# ------------------------------------------------------------------------------ 1. key binding
async def test_a_copy_pointed_at_another_host_never_sends_the_key() -> None:
    with hostile_server() as home, hostile_server() as elsewhere:
        ep = endpoint(home.base_url)
        moved = ep.model_copy(update={"base_url": elsewhere.base_url})
        assert ep.request_key() == KEY and moved.request_key() is None
        for target in (ep, moved):
            async with ModelClient(target) as client:
                await client.chat([{"role": "user", "content": "hi"}])
        await probe(moved, timeout_s=5)
        assert home.keys_seen() == [f"Bearer {KEY}"]
        assert elsewhere.keys_seen() == [] and len(elsewhere.seen) > 3  # it was called, never with the key


def test_a_key_given_again_with_the_new_url_is_sent() -> None:
    ep = endpoint("http://127.0.0.1:9")
    revalidated = Endpoint.model_validate({**ep.model_dump(), "base_url": "http://127.0.0.1:10"})
    assert revalidated.request_key() == KEY  # validated with the URL: "given with" it


# --------------------------------------------------------------------------- 2. keys in error text
@pytest.mark.parametrize("mode", ["echokey", "echokey500", "echokeystream"])
async def test_an_echoed_key_never_reaches_the_case(mode: str) -> None:
    with hostile_server(mode) as server:
        result = await one_case(endpoint(server.base_url))
    assert result.outcome == "error" and result.error_message
    assert "LEAKCHECK" not in result.model_dump_json()
    assert "***" in result.error_message


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {KEY}", "key sk-proj-AbCdEf0123456789xyz", '{"api_key": "hunter2secret"}',
    "token=ctx_4f9aa0c1d2e3f4a5b6", "ghp_0123456789abcdefghijABCDEFGHIJ012345", "AKIAABCDEFGHIJKLMNOP",
    "x-api-key: 0123abcd0123abcd", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIz",
])
def test_common_key_shapes_are_masked(text: str) -> None:
    cleaned = scrub(text)
    assert "***" in cleaned
    for secret in ("LEAKCHECK", "AbCdEf0123456789xyz", "hunter2secret", "4f9aa0c1d2e3", "0123456789abcdefghij",
                   "ABCDEFGHIJKLMNOP", "0123abcd0123abcd", "c2lnbmF0dXJlMTIz"):
        assert secret not in cleaned


def test_an_unusual_key_is_masked_when_known_and_bodies_are_cut() -> None:
    err = classify_http_error(401, json.dumps({"error": {"message": "bad key plainwordkey99 " + "x" * 5000}}),
                              secrets=("plainwordkey99",))
    assert "plainwordkey99" not in str(err) and len(str(err)) < 400
    assert err.body is not None and "plainwordkey99" not in err.body


# ------------------------------------------------------------------------------ 8. bounded answers
async def test_an_endless_stream_is_cut_and_the_case_keeps_the_marked_part() -> None:
    with hostile_server("endless") as server:
        tracemalloc.start()
        result = await one_case(endpoint(server.base_url))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sent = server.sent_bytes
    limit = answer_limit(16)
    assert (result.outcome, result.error_class) == ("error", "answer_too_long")
    assert len(result.answer) == limit == MIN_ANSWER_CHARS
    assert result.metadata["answer_truncated"] == {"kept_chars": limit, "kept_reasoning_chars": 0,
                                                   "limit_chars": limit}
    assert sent < 64 * 1024 * 1024 and peak < 64 * 1024 * 1024  # nowhere near the 256 MiB on offer


@pytest.mark.parametrize("mode", ["oneline", "bigplain"])
async def test_one_endless_line_or_a_huge_body_is_answer_too_long(mode: str) -> None:
    with hostile_server(mode) as server:
        async with ModelClient(endpoint(server.base_url, max_output_tokens=64)) as client:
            with pytest.raises(AnswerTooLongError) as e:
                await client.chat([{"role": "user", "content": "hi"}])
    assert e.value.error_class == "answer_too_long" and len(e.value.partial) <= answer_limit(64)


def test_the_answer_limit_follows_max_tokens_with_a_floor_and_a_cap() -> None:
    assert answer_limit(16) == MIN_ANSWER_CHARS
    assert answer_limit(10_000) == 320_000
    assert answer_limit(10**9) == 4 * 1024 * 1024


# -------------------------------------------------------------------------- 9. malformed shapes
PLAIN_SHAPES = [[1, 2], {"choices": "abc"}, {"choices": [None]}, {"choices": [1]}, {"choices": [{"message": "x"}]},
                {"choices": [{"message": {"content": 5}}]}, {"choices": [{"message": {"content": ["a"]}}]},
                {"choices": [{"message": {"content": "ok", "tool_calls": "x"}}]}, "just a string", 7, None]
STREAM_SHAPES = [[[1, 2]], [{"choices": "abc"}], [{"choices": [None]}], [{"choices": [{"delta": "x"}]}],
                 [{"choices": [{"delta": {"content": 3}}]}], [{"choices": [{"delta": {"tool_calls": "x"}}]}],
                 [{"choices": [{"delta": {"tool_calls": [{"index": "a"}]}}]}],
                 [{"choices": [{"delta": {"tool_calls": [{"function": "f"}]}}]}], ["text"]]


def _mock(body: object, *, stream: bool) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if stream:
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in body) + "data: [DONE]\n\n"  # type: ignore[attr-defined]
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("body", PLAIN_SHAPES, ids=[json.dumps(b)[:40] for b in PLAIN_SHAPES])
async def test_every_malformed_body_is_malformed_response(body: object) -> None:
    async with ModelClient(endpoint("http://127.0.0.1:9"), transport=_mock(body, stream=False)) as client:
        with pytest.raises(MalformedResponseError) as e:
            await client.chat([{"role": "user", "content": "hi"}])
    assert e.value.error_class == "malformed_response"


@pytest.mark.parametrize("chunks", STREAM_SHAPES, ids=[json.dumps(c)[:40] for c in STREAM_SHAPES])
async def test_every_malformed_stream_chunk_is_malformed_response(chunks: list[object]) -> None:
    async with ModelClient(endpoint("http://127.0.0.1:9"), transport=_mock(chunks, stream=True)) as client:
        with pytest.raises(MalformedResponseError):
            await client.chat([{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("usage", [{"prompt_tokens": "abc"}, [1], "x", {"prompt_tokens_details": {"cached_tokens": []}}])
async def test_a_malformed_usage_is_unknown_usage(usage: object) -> None:
    body = {"choices": [{"message": {"content": "42"}, "finish_reason": "stop"}], "usage": usage}
    async with ModelClient(endpoint("http://127.0.0.1:9"), transport=_mock(body, stream=False)) as client:
        resp = await client.chat([{"role": "user", "content": "hi"}])
    assert resp.text == "42" and resp.usage.cached_tokens is None


async def test_a_malformed_answer_is_a_case_error_never_internal() -> None:
    with hostile_server("body") as server:
        server.body = {"choices": [None]}
        result = await one_case(endpoint(server.base_url))
    assert (result.outcome, result.error_class) == ("error", "malformed_response")


# --------------------------------------------------------------------------------------- 10. probe
async def test_the_probe_reports_status_and_a_short_scrubbed_excerpt() -> None:
    with hostile_server("echokey") as server:
        result = await probe(endpoint(server.base_url), timeout_s=5)
    assert result.reachable and not result.models_listed and "models" in result.errors
    assert result.errors["models"].startswith("bad_request: HTTP 401: ")
    for note in result.errors.values():
        assert "LEAKCHECK" not in note and len(note) <= NOTE_CHARS + 40


async def test_the_probe_reads_bounded_bodies() -> None:
    with hostile_server("bigplain") as server:
        result = await probe(endpoint(server.base_url), timeout_s=10)
    assert not result.chat_works and "1,048,576" in result.errors["chat"]


# ------------------------------------------------------------------------------------ 4-6. limits
@pytest.mark.parametrize(("text", "message"), [
    ('{"a": "x\\ud800"}', "lone surrogate U+D800 at character 1"),
    ('{"n": ' + "9" * 5000 + "}", "64-bit"),
    ('{"n": 9223372036854775808}', "64-bit"),
    ('{"n": NaN}', "NaN"),
    ("[" * 100_000 + "]" * 100_000, f"deeper than {MAX_DEPTH}"),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"deeper than {MAX_DEPTH}"),
])
def test_json_over_the_limits_is_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(LimitError, match=re.escape(message)):
        loads_json(text)


def test_json_within_the_limits_parses() -> None:
    assert loads_json('{"n": -9223372036854775808, "s": "\\ud83d\\ude00"}') == {"n": -2**63, "s": "\U0001F600"}


def yaml_bomb(levels: int) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijk"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "name: bomb\nquestions:\n  - id: q\n    question: x\n    metadata:\n" + "\n".join(
        "      " + line for line in lines) + "\n"


@pytest.mark.parametrize("levels", [7, 9])
def test_a_yaml_alias_bomb_is_refused_before_it_expands(levels: int) -> None:
    with pytest.raises(LimitError, match="aliases expand"):
        parse_suite(yaml_bomb(levels), "yaml", source="ybomb.yaml")


def test_yaml_aliases_that_stay_small_are_fine() -> None:
    assert load_yaml("x: &x {a: 1}\ny: *x\nz: [*x, *x]") == {"x": {"a": 1}, "y": {"a": 1}, "z": [{"a": 1}] * 2}


@pytest.mark.parametrize(("fmt", "text", "line"), [
    ("json", '{\n"name": "s",\n"questions": [{"id": "q", "question": "a\\ud800"}]\n}', 3),
    ("jsonl", '{"type": "suite", "name": "s"}\n{"type": "question", "id": "q", "question": "a\\udfff"}', 2),
    ("yaml", 'name: s\nquestions:\n  - {id: q, question: "a\\ud800"}\n', 3),
])
def test_suite_files_with_a_lone_surrogate_name_the_line(fmt: str, text: str, line: int) -> None:
    with pytest.raises(UserInputError) as e:
        parse_suite(text, fmt, source=f"s.{fmt}")
    assert e.value.line == line and ("surrogate" in str(e.value) or "Unicode" in str(e.value))


def test_a_strategy_label_or_key_over_the_column_limit_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at most 200"):
        StrategySpec(name="no_context", label="L" * (STRATEGY_KEY_MAX + 1))
    with pytest.raises(ValidationError, match="shorter 'label'"):
        StrategySpec(name="rag", params={"retriever": "x" * 300})
    assert StrategySpec(name="no_context", label="L" * STRATEGY_KEY_MAX).key == "L" * STRATEGY_KEY_MAX


def test_a_base_url_with_a_query_is_refused() -> None:
    """``http://host/api/endpoints?x=`` would turn the probe's fixed paths into a query string."""
    from pydantic import ValidationError

    for url in ("http://127.0.0.1:8310/api/endpoints?x=", "http://127.0.0.1:8310/#frag"):
        with pytest.raises(ValidationError, match="query"):
            Endpoint(name="e", base_url=url, model="m")


async def test_pipeline_tokens_are_scrubbed_from_case_errors_too() -> None:
    from evals.domain import CaseResult

    suite = tiny_suite()
    ep = endpoint("http://127.0.0.1:9")
    spec = make_spec(suite, [ep], [StrategySpec(name="no_context")], ["exact_match"])
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec,
                      secrets={"PIPE_TOKEN": "plainpipelinetoken42"}) as engine:
        result = CaseResult(case_id="c", question_id="q", endpoint="hostile", strategy="s", strategy_name="s",
                            outcome="error", error_message=f"pipeline said plainpipelinetoken42 and {KEY}")
        engine._scrub(result)
    assert result.error_message == "pipeline said *** and ***"
