"""The two fakes are one model: the same chat, agent, judge, overflow and embedding requests get the same
answers, tool calls, token counts and vectors from the MockTransport fake (``tests.fakes.mock_transport``)
and from the fake server on 127.0.0.1 (``tests.fakes.openai_server``).

Both sides take every decision from ``tests.fakes.fake_model``; a change to one transport alone (its own
answer rule, token count, cache or embedding) makes these tests fail. The expected values pinned here
keep the comparison from passing on two sides that are equally broken (both empty, say).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from evals.client import ModelClient
from evals.domain import CaseResult, Endpoint, Question, RetrievedChunk
from evals.errors import ContextOverflowError
from evals.judge import judge_messages
from evals.strategies.agentic import SYSTEM_TEXT, TOOLS
from tests.fakes import fake_model as fm
from tests.fakes.mock_transport import MockModel
from tests.fakes.openai_server import FakeServer

NEEDLES = ("The special magic number for lisbon is: 4418203. The harbour master counts ships every morning. "
           "The capital of Freedonia is: Fred Ville North Upon Sea.")


def ask(question: str, context: str = NEEDLES) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Answer the question from the documents."},
            {"role": "user", "content": f"Documents:\n{context}\n\nQuestion: {question}\nAnswer:"}]


def _endpoint(base_url: str, **kw: Any) -> Endpoint:
    return Endpoint(name="fake", base_url=base_url, model="fake-model", max_retries=0, **kw)


@pytest.fixture
async def both(fake_server: FakeServer) -> AsyncIterator[tuple[ModelClient, ModelClient, MockModel]]:
    """``(mock client, server client, mock)``: the engine's client on each fake, tools on both."""
    fake_server.configure(tool_mode=True)
    mock = MockModel()
    async with ModelClient(_endpoint("http://mock.invalid"), transport=mock.transport) as m, \
            ModelClient(_endpoint(fake_server.base_url)) as s:
        yield m, s, mock


def said(r: Any) -> dict[str, Any]:
    """What a reply says and costs (latency and ids of the response aside)."""
    return {"text": r.text, "finish_reason": r.finish_reason, "tool_calls": r.tool_calls,
            "prompt_tokens": r.usage.prompt_tokens, "completion_tokens": r.usage.completion_tokens,
            "cached_tokens": r.usage.cached_tokens}


async def same(clients: tuple[ModelClient, ModelClient, MockModel], messages: list[dict[str, Any]],
               **kw: Any) -> dict[str, Any]:
    m, s, _ = clients
    mocked, served = said(await m.chat(messages, **kw)), said(await s.chat(messages, **kw))
    assert mocked == served
    return mocked


async def test_answers_usage_and_the_prompt_cache_agree(both) -> None:
    found = await same(both, ask("What is the special magic number for lisbon?"))
    assert (found["text"], found["finish_reason"], found["cached_tokens"]) == ("4418203", "stop", 0)
    assert found["prompt_tokens"] == len(fm.prompt_tokens(ask("What is the special magic number for lisbon?")))
    assert found["completion_tokens"] == 1
    # the same documents again: the shared prefix is cached, in whole blocks, on both
    again = await same(both, ask("What is the capital of Freedonia?"))
    assert again["text"] == "Fred Ville North Upon Sea" and again["cached_tokens"] > 0
    assert again["cached_tokens"] % fm.CACHE_BLOCK == 0
    # a near miss (3 of the 4 words of the question) does not answer
    near = await same(both, ask("What is the special magic number for oslo?"))
    assert near["text"] == "unanswerable"
    # max_tokens cuts the answer the same way
    cut = await same(both, ask("What is the capital of Freedonia?"), max_tokens=2)
    assert (cut["text"], cut["finish_reason"], cut["completion_tokens"]) == ("Fred Ville", "length", 2)


async def test_native_agent_steps_agree(both) -> None:
    question = [{"role": "system", "content": "Use the tools to answer."},
                {"role": "user", "content": "Documents:\n- d2 (Doc 2)\n\nQuestion: What is the special magic "
                                            "number for lisbon?"}]
    first = await same(both, question, tools=TOOLS)
    assert first["finish_reason"] == "tool_calls" and first["text"] == ""
    call = first["tool_calls"][0]
    assert call["function"] == {"name": "search",
                                "arguments": '{"query": "What is the special magic number for lisbon?"}'}
    result = [*question, {"role": "assistant", "content": None, "tool_calls": first["tool_calls"]},
              {"role": "tool", "tool_call_id": call["id"],
               "content": "[d2#0] (document d2, part 0)\nThe special magic number for lisbon is: 4418203."}]
    answered = await same(both, result, tools=TOOLS)
    assert (answered["text"], answered["tool_calls"]) == ("4418203", [])
    miss = [*result[:-1], {**result[-1], "content": "[d0#1] (document d0, part 3)\nFarmers prune the trees."}]
    read = await same(both, miss, tools=TOOLS)
    assert read["tool_calls"][0]["function"] == {"name": "read", "arguments": '{"doc_id": "d0", "part": 3}'}


async def test_text_protocol_agent_steps_agree(both) -> None:
    messages = [{"role": "system", "content": SYSTEM_TEXT},
                {"role": "user", "content": "Question: What is the special magic number for lisbon?"}]
    step = await same(both, messages)
    assert step["text"] == "SEARCH: What is the special magic number for lisbon?"
    seen = [*messages, {"role": "assistant", "content": step["text"]},
            {"role": "user", "content": "Result:\n[d2#0] (document d2, part 0)\nThe special magic number for "
                                        "lisbon is: 4418203."}]
    assert (await same(both, seen))["text"] == "ANSWER: 4418203"


def _case(answer: str, retrieved: list[RetrievedChunk] | None = None) -> CaseResult:
    return CaseResult(case_id="c", question_id="q1", endpoint="fake", strategy="rag", strategy_name="rag",
                      answer=answer, retrieved=retrieved or [])


@pytest.mark.parametrize(("rubric", "answer", "verdict"), [
    ("correctness", "4418203", '{"score": 1, "rationale": "matches"}'),
    ("correctness", "1234567", '{"score": 0, "rationale": "differs"}'),
    ("niah", "It is 4418203.", "Score: 10"),
    ("faithfulness", "4418203", '{"score": 1, "rationale": "answer found"}'),
    ("faithfulness", "9999999", '{"score": 0, "rationale": "answer not found"}'),
])
async def test_judge_verdicts_agree(both, rubric: str, answer: str, verdict: str) -> None:
    question = Question(id="q1", question="What is the special magic number for lisbon?", answers=["4418203"])
    chunk = RetrievedChunk(chunk_id="d2#0", doc_id="d2", start=0, end=48, score=1.0, rank=0,
                           text="The special magic number for lisbon is: 4418203.")
    messages = judge_messages(rubric, question, _case(answer, [chunk]))
    assert messages is not None
    judged = await same(both, messages, max_tokens=64)
    assert judged["text"].endswith(verdict)
    assert both[2].judge_requests  # the mock saw it as a judge request, as the server did


async def test_overflow_errors_agree(fake_server: FakeServer) -> None:
    fake_server.configure(max_model_len=40, overflow_shape="vllm")
    mock = MockModel(window=40, overflow_shape="vllm")
    body: dict[str, Any] = {"model": "fake-model", "messages": ask("What is the special magic number for lisbon?"),
                            "max_tokens": 8}
    with httpx.Client(transport=mock.transport, base_url="http://mock.invalid") as m:
        mocked = m.post("/v1/chat/completions", json=body)
    served = httpx.post(f"{fake_server.url}/chat/completions", json=body, timeout=10)
    assert (mocked.status_code, mocked.json()) == (served.status_code, served.json())
    assert mocked.status_code == 400 and "maximum context length is 40 tokens" in mocked.text
    async with ModelClient(_endpoint("http://mock.invalid"), transport=mock.transport) as c:
        with pytest.raises(ContextOverflowError):
            await c.chat(body["messages"], max_tokens=8)
    small = {**body, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(transport=mock.transport, base_url="http://mock.invalid") as m:
        assert m.post("/v1/chat/completions", json=small).status_code == 200


async def test_embeddings_agree(both, fake_server: FakeServer) -> None:
    texts = ["The special magic number for lisbon is: 4418203.", "magic number lisbon", "the of and", ""]
    m, s, mock = both
    (mv, mu), (sv, su) = await m.embed(texts, model="emb"), await s.embed(texts, model="emb")
    assert mv == sv and mu == su
    assert mv[0] == fm.embed(texts[0]) and len(mv[0]) == fm.EMBEDDING_DIM
    assert mu.prompt_tokens == fm.embedding_tokens(texts) > 0
    raw = {"model": "emb", "input": texts[:2]}
    with httpx.Client(transport=mock.transport, base_url="http://mock.invalid") as c:
        mocked = c.post("/v1/embeddings", json=raw).json()
    served = httpx.post(f"{fake_server.url}/embeddings", json=raw, timeout=10).json()
    assert json.dumps(mocked, sort_keys=True) == json.dumps(served, sort_keys=True)
