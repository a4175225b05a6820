"""Strategies own their story: one budget rule for execution and estimate, one prefix-wave ordering."""

from __future__ import annotations

from evals.domain import Outcome, StrategySpec
from evals.runner import prefix_waves
from evals.strategies import build_strategy
from evals.strategies.base import EstimateContext, context_budget
from evals.tokens import local_tokenizer
from tests.fakes.mock_transport import MockModel
from tests.retrieval_suite import endpoint, make_suite, run_cases


def test_prefix_waves_start_leaders_and_ungrouped_at_once_and_keep_plan_order():
    items = [("a", "g1"), ("b", None), ("c", "g1"), ("d", "g2"), ("e", "g1"), ("f", "g2"), ("g", None)]
    waves = prefix_waves(items, lambda it: it[1])
    assert [i for i, _ in waves.first] == ["a", "b", "d", "g"]
    assert {g: i for g, (i, _) in waves.leaders.items()} == {"g1": "a", "g2": "d"}
    assert {g: [i for i, _ in its] for g, its in waves.followers.items()} == {"g1": ["c", "e"], "g2": ["f"]}


def test_context_budget_is_window_minus_output_margin_and_frame():
    assert context_budget(endpoint(context_window=1000, max_output_tokens=100), margin_tokens=64,
                          frame_tokens=36) == 800
    assert context_budget(endpoint(context_window=None), margin_tokens=0, frame_tokens=0) is None


async def test_the_estimate_refuses_exactly_the_long_context_cases_the_engine_refuses():
    suite = make_suite()
    est = EstimateContext(suite, local_tokenizer("cl100k"))
    probe = endpoint(context_window=100_000)
    sizes = sorted(est.at(q, probe).frame_tokens() + est.context_tokens() for q in suite.questions)
    # a window between the smallest and the largest prompt: some cases fit, some do not
    window = (sizes[0] + sizes[-1]) // 2 + probe.max_output_tokens + 64
    ep = endpoint(context_window=window)
    spec = StrategySpec(name="long_context")
    strategy = build_strategy(spec)
    expected = {q.id: strategy.estimate_tokens(est.at(q, ep))[1] for q in suite.questions}
    assert set(expected.values()) == {True, False}
    results = await run_cases(suite, ep, [spec], MockModel())
    sent = {r.question_id: r.outcome != Outcome.over_window for r in results.values()}
    assert sent == expected


async def test_a_retriever_is_built_per_run_not_per_case(monkeypatch):
    from evals.strategies import rag

    calls = []
    real = rag.build_retriever
    monkeypatch.setattr(rag, "build_retriever", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    suite = make_suite()
    counts = []
    for n in (1, len(suite.questions)):
        calls.clear()
        small = suite.model_copy(update={"questions": suite.questions[:n]})
        results = await run_cases(small, endpoint(), [StrategySpec(name="rag", params={"k": 2})], MockModel())
        assert len(results) == n
        counts.append(len(calls))
    assert counts[0] == counts[1]  # the same builds for 1 question as for all of them
