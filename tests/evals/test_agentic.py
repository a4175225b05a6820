"""The agentic strategy: native and text protocols, stored steps, reads, budgets, robust parsing."""

from __future__ import annotations

import json

import pytest

from evals.domain import Outcome, StrategySpec
from evals.retrieval.chunking import token_windows
from evals.strategies.agentic import parse_action
from evals.tokens import local_tokenizer
from tests.fakes.fake_model import Move, agent_move, always_search
from tests.fakes.mock_transport import MockModel
from tests.retrieval_suite import LISBON, endpoint, make_suite, run_cases

SMALL = {"chunk_tokens": 48, "overlap_tokens": 0, "k": 2}


def agent(mode: str, label: str = "agent", **params) -> StrategySpec:
    return StrategySpec(name="agentic", params={**SMALL, "tool_mode": mode, **params}, label=label)


@pytest.mark.parametrize("mode", ["native", "text"])
async def test_agent_searches_then_answers_and_stores_every_step(mode):
    suite, model = make_suite(), MockModel()
    results = await run_cases(suite, endpoint(), [agent(mode)], model)
    r = results[("q1", "agent")]
    assert r.answer == "4418203" and r.outcome == Outcome.ok and r.scores["exact_match"] == 1.0
    assert [s["tool"] for s in r.steps] == ["search", "answer"]
    search = r.steps[0]
    assert search["arguments"] == {"query": suite.questions[0].question} and search["mode"] == mode
    assert search["chunk_ids"] == [c.chunk_id for c in r.retrieved][:2] and search["chunk_ids"][0].startswith("d2#")
    assert all(s["tokens"] == s["prompt_tokens"] + s["completion_tokens"] > 0 for s in r.steps)
    assert r.scores["retrieval_recall"] == 1.0 and r.retrieved[0].gold
    # cost, tokens and latency cover every step
    assert [c.role for c in r.calls] == ["agent_step", "agent_step"]
    assert r.usage.prompt_tokens == sum(c.usage.prompt_tokens for c in r.calls) == sum(
        s["prompt_tokens"] for s in r.steps)
    assert r.cost_usd == pytest.approx(sum(c.cost_usd for c in r.calls))
    requests = [b for b in model.requests if b["messages"][1]["content"].endswith("lisbon?")]
    if mode == "native":
        assert all(b["tools"][0]["function"]["name"] == "search" for b in requests)
        assert requests[1]["messages"][-1]["role"] == "tool"
        assert requests[1]["messages"][-2]["tool_calls"][0]["function"]["name"] == "search"
    else:
        assert all("tools" not in b for b in requests)
        assert requests[1]["messages"][-1]["content"].startswith("Result:\n[d2#")


async def test_auto_mode_follows_the_endpoints_tool_support():
    suite = make_suite()
    for supports, mode in ((True, "native"), (False, "text"), (None, "text")):
        model = MockModel()
        results = await run_cases(suite, endpoint(supports_tools=supports), [agent("auto")], model)
        assert results[("q1", "agent")].metadata["agent"]["mode"] == mode
        assert ("tools" in model.requests[0]) is (mode == "native")


@pytest.mark.parametrize("mode", ["native", "text"])
async def test_read_returns_a_window_of_the_document(mode):
    suite = make_suite()
    text = suite.documents[2].text
    windows = token_windows(text, 64, 64, local_tokenizer("cl100k"))
    needle = text.index(LISBON)
    part_no = next(i for i, (s, e, _) in enumerate(windows) if s <= needle and needle + len(LISBON) - 1 <= e)
    assert part_no > 0

    def reader(messages) -> Move:
        seen = [m for m in messages if m["role"] == "tool" or str(m.get("content", "")).startswith("Result:")]
        if not seen:
            return ("read", ("d2", part_no))
        return agent_move(messages)

    model = MockModel(agent=reader)
    results = await run_cases(suite, endpoint(), [agent(mode, read_tokens=64)], model)
    r = results[("q1", "agent")]
    assert r.steps[0]["tool"] == "read" and r.steps[0]["arguments"] == {"doc_id": "d2", "part": part_no}
    assert r.steps[0]["chunk_ids"] == [f"d2@part{part_no}"]
    part = r.retrieved[0]
    assert part.chunk_id == f"d2@part{part_no}" and (part.start, part.end) == windows[part_no][:2]
    assert part.text == text[part.start:part.end]
    assert r.answer == "4418203" and part.gold and r.scores["retrieval_recall"] == 1.0


async def test_step_budget_forces_a_final_answer():
    suite, model = make_suite(), MockModel(agent=always_search)
    results = await run_cases(suite, endpoint(), [agent("text", max_steps=3)], model)
    r = results[("q1", "agent")]
    assert [c.role for c in r.calls] == ["agent_step"] * 3 + ["answer"]
    assert [s["tool"] for s in r.steps] == ["search"] * 3 + ["forced_answer"]
    assert r.error_class == "budget_exhausted" and r.metadata["agent"]["budget_exhausted"] == "steps"
    # the mock keeps searching when told to answer: an action is not an answer
    assert r.answer == "" and r.outcome == Outcome.no_answer
    assert model.requests[-1]["messages"][-1]["content"].startswith("You have no searches or reads left")


async def test_forced_answer_is_kept_when_the_model_gives_one():
    def stubborn(messages) -> Move:
        if "You have no searches" in str(messages[-1]["content"]):
            return ("answer", "4418203")
        return always_search(messages)

    suite = make_suite()
    results = await run_cases(suite, endpoint(), [agent("native", max_steps=2)], MockModel(agent=stubborn))
    r = results[("q1", "agent")]
    assert r.answer == "4418203" and r.outcome == Outcome.ok and r.error_class == "budget_exhausted"
    assert r.scores["exact_match"] == 1.0


async def test_no_answer_policy_ends_without_a_final_call():
    suite, model = make_suite(), MockModel(agent=always_search)
    results = await run_cases(suite, endpoint(), [agent("native", max_steps=2, on_budget="no_answer")], model)
    r = results[("q1", "agent")]
    assert r.outcome == Outcome.no_answer and r.error_class == "budget_exhausted" and r.answer == ""
    assert [c.role for c in r.calls] == ["agent_step", "agent_step"] and len(r.steps) == 2


async def test_token_budget_stops_the_loop_before_the_step_budget():
    suite, model = make_suite(), MockModel(agent=always_search)
    results = await run_cases(suite, endpoint(), [agent("text", max_steps=50, max_tokens_total=600,
                                                        on_budget="no_answer")], model)
    r = results[("q1", "agent")]
    assert r.metadata["agent"]["budget_exhausted"] == "tokens" and r.error_class == "budget_exhausted"
    assert 1 <= len(r.calls) < 50
    assert r.metadata["agent"]["tokens_used"] == sum(s["tokens"] for s in r.steps)
    assert r.metadata["agent"]["tokens_used"] <= 600


async def test_invalid_actions_go_back_to_the_model():
    replies = iter([("text", "Let me think about this."), ("text", "SEARCH: magic number lisbon"),
                    ("text", "ANSWER: 4418203")])
    suite = make_suite().model_copy(update={"questions": make_suite().questions[:1]})
    results = await run_cases(suite, endpoint(), [agent("text")], MockModel(agent=lambda m: next(replies)))
    r = results[("q1", "agent")]
    assert [s["tool"] for s in r.steps] == ["invalid", "search", "answer"] and r.answer == "4418203"


async def test_malformed_native_arguments_and_unknown_tools_are_reported_to_the_model():
    calls = iter(["{not json", json.dumps({"x": 1})])

    suite = make_suite().model_copy(update={"questions": make_suite().questions[:1]})
    model = MockModel(agent=lambda m: ("search", "q") if len(m) < 5 else ("answer", "4418203"))
    original = model._reply

    def reply(body):
        text, tools = original(body)
        if tools and len(body["messages"]) == 2:
            tools = [{"id": "a", "type": "function", "function": {"name": "search", "arguments": next(calls)}},
                     {"id": "b", "type": "function", "function": {"name": "grep", "arguments": next(calls)}}]
        return text, tools

    model._reply = reply
    results = await run_cases(suite, endpoint(), [agent("native")], model)
    r = results[("q1", "agent")]
    assert [s["tool"] for s in r.steps][:2] == ["invalid", "invalid"]
    assert r.steps[0]["tokens"] and r.steps[1]["tokens"] is None  # one call's tokens, counted once
    tool_msgs = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs[0]["content"].startswith("error: the arguments") and "unknown tool 'grep'" in tool_msgs[1]["content"]
    assert r.answer == "4418203"


@pytest.mark.parametrize(("text", "expected"), [
    ("SEARCH: capital of France", ("search", {"query": "capital of France"})),
    ("**SEARCH:** `capital of France`", ("search", {"query": "capital of France"})),
    ("I will look.\nAction: search(capital of France)", ("search", {"query": "capital of France"})),
    ("READ: d2 3", ("read", {"doc_id": "d2", "part": 3})),
    ("read: d2, part 4", ("read", {"doc_id": "d2", "part": 4})),
    ("READ: annual report 2023 part 2", ("read", {"doc_id": "annual report 2023", "part": 2})),
    ("READ: d12", ("read", {"doc_id": "d12", "part": 0})),
    ("<think>SEARCH: wrong</think>\nANSWER: 42", ("answer", {"answer": "42"})),
    ("answer: Paris, France\n", ("answer", {"answer": "Paris, France"})),
    ("SEARCH: first\nANSWER: too early", ("search", {"query": "first"})),
    ("The answer is 42.", None),
    ("SEARCH:", None),
])
def test_text_actions_are_parsed_robustly(text, expected):
    assert parse_action(text, ["d2", "d12", "annual report 2023"]) == expected


async def test_reads_outside_the_questions_documents_are_errors_for_the_model():
    moves = iter([("read", ("d9", 0)), ("read", ("d2", 999)), ("answer", "unanswerable")])
    suite = make_suite().model_copy(update={"questions": [make_suite().questions[0].model_copy(
        update={"doc_ids": ["d2", "d3"]})]})
    model = MockModel(agent=lambda m: next(moves))
    results = await run_cases(suite, endpoint(), [agent("text")], model)
    r = results[("q1", "agent")]
    assert [s["chunk_ids"] for s in r.steps] == [[], [], []] and r.retrieved == []
    last = model.requests[-1]["messages"]
    assert "unknown document 'd9'" in last[-3]["content"] and "has parts 0 to" in last[-1]["content"]
    assert "- d2 (Doc 2)" in last[1]["content"] and "d0" not in last[1]["content"]  # only its own documents
