"""Strategies' prompt building and truncation, and the runner, against an in-process mock model."""

from __future__ import annotations

import httpx
import pytest

from evals.cache import MemoryCache
from evals.domain import Document, Endpoint, Evidence, Outcome, Question, StrategySpec, Suite
from evals.errors import UserInputError
from evals.runner import Engine, make_spec, plan_cases, run_all
from evals.strategies import build_strategy
from tests.fakes.mock_transport import MockModel

FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


def make_suite() -> Suite:
    docs = [Document(id=f"d{i}", title=f"Doc {i}", text=FILLER * 30) for i in range(4)]
    needle = "The special magic number for lisbon is: 4418203."
    docs[2] = Document(id="d2", title="Doc 2", text=FILLER * 15 + needle + " " + FILLER * 15)
    start = docs[2].text.index(needle)
    questions = [
        Question(id="q1", question="What is the special magic number for lisbon?", answers=["4418203"],
                 evidence=[Evidence(doc_id="d2", start=start, end=start + len(needle))]),
        Question(id="q2", question="What is the special magic number for oslo?", answers=["unanswerable"],
                 metadata={"unanswerable": True}),
    ]
    return Suite(name="mini", documents=docs, questions=questions)


def endpoint(**kw) -> Endpoint:
    base = dict(name="mock", base_url="http://127.0.0.1:9/v1", model="m", concurrency=2, max_output_tokens=16,
                price_input=1.0, price_cached_input=0.1, price_output=2.0)
    base.update(kw)
    return Endpoint(**base)


async def run_cases(suite, ep, strategies, model, cache=None, scorers=("exact_match", "f1")):
    spec = make_spec(suite, [ep], strategies, list(scorers))
    plans = plan_cases(spec, suite)
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec, cache=cache,
                      transport=model.transport) as engine:
        return {(r.question_id, r.strategy): r async for r in run_all(engine, plans)}


async def test_compares_four_strategies_and_scores_every_case():
    suite, model = make_suite(), MockModel()
    strategies = [StrategySpec(name=n) for n in ("no_context", "long_context", "rag", "self_route")]
    results = await run_cases(suite, endpoint(), strategies, model)
    assert len(results) == 8
    assert results[("q1", "long_context")].answer == "4418203"
    assert results[("q1", "long_context")].scores["exact_match"] == 1.0
    assert results[("q1", "no_context")].scores["exact_match"] == 0.0
    rag = results[("q1", "rag")]
    assert rag.answer == "4418203" and rag.retrieved and rag.retrieved[0].doc_id == "d2"
    assert rag.retrieved[0].gold is True
    assert rag.scores["retrieval_recall"] == 1.0
    assert results[("q1", "self_route")].route == "rag"
    declined = results[("q2", "self_route")]
    assert declined.route == "long_context" and len(declined.calls) == 2
    assert declined.usage.prompt_tokens == sum(c.usage.prompt_tokens for c in declined.calls)
    assert results[("q2", "long_context")].outcome == Outcome.declined
    lc = results[("q1", "long_context")]
    assert lc.usage.prompt_tokens and lc.cost_usd and lc.cost_usd > 0 and lc.latency_s is not None
    assert lc.context_tokens and lc.context_tokens > 1000


async def test_long_context_prompt_puts_documents_first_question_last_in_stable_order():
    suite, model = make_suite(), MockModel()
    await run_cases(suite, endpoint(), [StrategySpec(name="long_context")], model)
    prompts = [r["messages"][-1]["content"] for r in model.requests]
    assert prompts[0].index("[Document 1: d0]") < prompts[0].index("[Document 4: d3]") < prompts[0].index("Question:")
    # both questions share the byte-identical documents prefix, so server prefix caches can hit
    assert prompts[0].rsplit("Question:", 1)[0] == prompts[1].rsplit("Question:", 1)[0]


@pytest.mark.parametrize("policy", ["head", "tail", "middle"])
async def test_long_context_truncates_to_the_window_and_records_dropped_tokens(policy):
    suite, model = make_suite(), MockModel()
    ep = endpoint(context_window=600)
    results = await run_cases(suite, ep, [StrategySpec(name="long_context", params={"truncation": policy}, label="lc")], model)
    r = results[("q1", "lc")]
    assert r.truncation is not None and r.truncation.policy == policy and r.truncation.dropped_tokens > 0
    assert r.outcome != Outcome.over_window
    assert r.usage.estimated_prompt_tokens <= 600 - ep.max_output_tokens


async def test_long_context_error_policy_refuses_without_sending():
    suite, model = make_suite(), MockModel()
    results = await run_cases(suite, endpoint(context_window=600), [StrategySpec(name="long_context")], model)
    r = results[("q1", "long_context")]
    assert r.outcome == Outcome.over_window and r.error_class == "over_budget"
    assert r.truncation.dropped_tokens > 0 and model.requests == []
    assert r.scores["exact_match"] == 0.0


async def test_server_context_overflow_is_an_outcome_not_a_crash():
    # A window of 120 fake tokens: the long context (about 1230) overflows it, rag's prompt (one chunk of
    # 32 cl100k tokens: 86 fake tokens, 102 with the 16 of output) fits. It was 100, which fitted 98 with
    # a chunk of three sentences; counted from one encoding a 32-token chunk holds four (a sentence
    # counted alone had its trailing space as one token more).
    suite, model = make_suite(), MockModel(window=120)
    results = await run_cases(suite, endpoint(), [StrategySpec(name="long_context"), StrategySpec(name="rag", params={"k": 1, "chunk_tokens": 32, "overlap_tokens": 0}, label="rag")], model)
    assert results[("q1", "long_context")].outcome == Outcome.over_window
    assert results[("q1", "long_context")].error_class == "context_overflow"
    assert results[("q1", "rag")].outcome == Outcome.ok


async def test_rag_k_budget_and_document_order():
    suite, model = make_suite(), MockModel()
    strategies = [StrategySpec(name="rag", params={"k": 3, "chunk_tokens": 64, "overlap_tokens": 0}, label="k3"),
                  StrategySpec(name="rag", params={"budget_tokens": 130, "chunk_tokens": 64, "overlap_tokens": 0},
                               label="budget"),
                  StrategySpec(name="rag", params={"k": 4, "chunk_tokens": 64, "overlap_tokens": 0, "order": "position"},
                               label="op")]
    results = await run_cases(suite, endpoint(), strategies, model)
    assert len(results[("q1", "k3")].retrieved) == 3
    budget = results[("q1", "budget")].retrieved
    assert 1 <= len(budget) <= 2
    op = results[("q1", "op")].retrieved
    keys = [(c.doc_id, c.start) for c in op]
    assert keys == sorted(keys)  # document order, not score order
    assert sorted(c.rank for c in op) == [0, 1, 2, 3]
    prompt = results[("q1", "k3")].prompt[-1]["content"]
    assert "[Chunk d2#" in prompt  # chunk ids are in the prompt


async def test_faults_are_classified_and_never_abort_the_run():
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if "number for lisbon?" in request.content.decode():
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        return MockModel().handler(request)

    suite = make_suite()

    class T:
        transport = httpx.MockTransport(handler)

    results = await run_cases(suite, endpoint(max_retries=0), [StrategySpec(name="long_context")], T)
    assert results[("q1", "long_context")].outcome == Outcome.error
    assert results[("q1", "long_context")].error_class == "bad_request"
    # no answer: every answer scorer gives 0 by definition (never the score of an empty string)
    assert results[("q1", "long_context")].scores == {"exact_match": 0.0, "f1": 0.0}
    assert results[("q2", "long_context")].outcome == Outcome.declined


async def test_response_cache_makes_a_rerun_free():
    suite, cache = make_suite(), MemoryCache()
    first = MockModel()
    strategies = [StrategySpec(name="long_context"), StrategySpec(name="rag")]
    a = await run_cases(suite, endpoint(), strategies, first, cache=cache)
    second = MockModel()
    b = await run_cases(suite, endpoint(), strategies, second, cache=cache)
    assert second.requests == []
    assert all(r.from_cache for r in b.values())
    assert {k: r.answer for k, r in a.items()} == {k: r.answer for k, r in b.items()}
    assert {k: r.usage for k, r in a.items()} == {k: r.usage for k, r in b.items()}


async def test_prefix_aware_order_sends_one_request_before_the_rest():
    suite = make_suite()
    suite = suite.model_copy(update={"questions": [
        Question(id=f"q{i}", question=f"What is the special magic number for city{i}?", answers=["x"])
        for i in range(6)]})
    model = MockModel()
    results = await run_cases(suite, endpoint(concurrency=6), [StrategySpec(name="long_context")], model)
    assert len(results) == 6
    # the leader went first and warmed the cache: every later request reports cached tokens
    cached = [r.usage.cached_tokens for r in results.values()]
    assert sorted(cached)[0] == 0 and all(c > 0 for c in sorted(cached)[1:])


def test_bad_strategy_params_name_the_field():
    with pytest.raises(UserInputError) as e:
        build_strategy(StrategySpec(name="rag", params={"k": 0}), index=2)
    assert "strategies[2].params.k" in str(e.value)
    with pytest.raises(UserInputError, match="unknown strategy 'nope'"):
        build_strategy(StrategySpec(name="nope"))


def test_spec_hash_covers_judge_and_embeddings_but_never_keys():
    from evals.embeddings import EmbeddingSettings

    suite = make_suite()
    base = make_spec(suite, [endpoint()], [StrategySpec(name="rag")], ["exact_match"])
    judge = endpoint(name="judge", api_key="sk-secret-judge")
    with_judge = make_spec(suite, [endpoint()], [StrategySpec(name="rag")], ["exact_match"], judge=judge)
    emb = EmbeddingSettings(source="endpoint", endpoint=endpoint(name="emb", api_key="sk-secret-emb"))
    with_emb = make_spec(suite, [endpoint()], [StrategySpec(name="rag")], ["exact_match"], embeddings=emb)
    assert len({base.spec_hash, with_judge.spec_hash, with_emb.spec_hash}) == 3
    dumped = with_judge.model_dump_json() + with_emb.model_dump_json()
    assert "sk-secret" not in dumped


async def test_case_depth_is_the_target_depth_with_the_measured_one_kept():
    suite = make_suite()
    q = suite.questions[0].model_copy(update={"metadata": {"depth": 47.3, "depth_target": 50.0}})
    suite = suite.model_copy(update={"questions": [q]})
    results = await run_cases(suite, endpoint(), [StrategySpec(name="long_context")], MockModel())
    r = results[("q1", "long_context")]
    assert r.depth == 50.0 and r.metadata["depth_measured"] == 47.3


async def test_whole_context_is_rendered_and_counted_once_per_document_list(monkeypatch):
    """Every rag case records its question's long-context size; a shared corpus is counted once."""
    import evals.runner as runner_module

    base = make_suite()
    questions = [Question(id=f"q{i}", question=f"What is the special magic number for city {i}?",
                          answers=["unanswerable"]) for i in range(6)]
    suite = Suite(name="shared", documents=base.documents, questions=questions)
    rendered: list[int] = []
    original = runner_module.prompts.render_documents

    def counting(docs):
        rendered.append(len(docs))
        return original(docs)

    monkeypatch.setattr(runner_module.prompts, "render_documents", counting)
    results = await run_cases(suite, endpoint(concurrency=6), [StrategySpec(name="rag")], MockModel())
    sizes = {r.context_tokens for r in results.values()}
    assert len(results) == 6 and len(sizes) == 1 and next(iter(sizes)) > 1000
    assert rendered.count(len(suite.documents)) == 1


async def test_short_texts_are_counted_inline_and_server_counts_in_a_thread():
    import threading

    from evals.strategies.base import CaseContext

    class Counting:
        name = "counting"

        def __init__(self, remote: bool) -> None:
            self.remote = remote
            self.threads: list[str] = []

        def count(self, text: str) -> int:
            self.threads.append(threading.current_thread().name)
            return len(text.split())

        def encode(self, text: str) -> list[int]:
            return []

        def decode(self, ids: list[int]) -> str:
            return ""

    main = threading.current_thread().name
    for remote, expect_main in ((False, True), (True, False)):
        tok = Counting(remote)
        ctx = CaseContext.__new__(CaseContext)
        ctx.tokenizer, ctx.count_cache = tok, {}
        assert await ctx.count("a short question") == 3
        assert await ctx.count("a short question") == 3  # memoised
        assert tok.threads == [main] if expect_main else (len(tok.threads) == 1 and tok.threads[0] != main)
        assert await ctx.count("word " * 5000) == 5000  # long: always in a worker thread
        assert tok.threads[-1] != main
