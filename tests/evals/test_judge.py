"""The llm_judge scorer: verdict parsing, the judge step of the engine, cost kept apart, agreement."""

from __future__ import annotations

import random

import httpx
import pytest
from sklearn.metrics import cohen_kappa_score

from evals.cache import MemoryCache
from evals.diagnostics import judge_agreement
from evals.domain import Outcome, StrategySpec
from evals.errors import UserInputError
from evals.judge import parse_verdict
from evals.runner import Engine, make_spec
from evals.summary import CaseRow
from tests.fakes.mock_transport import MockModel
from tests.retrieval_suite import endpoint, make_suite, run_cases

JUDGED = ("exact_match", "f1", "llm_judge", "llm_judge:niah", "llm_judge:faithfulness")
RAG = {"chunk_tokens": 48, "overlap_tokens": 0, "k": 2}


def judge_endpoint(**kw):
    # room for the fake judge's sentence of reasoning and its JSON verdict (16 tokens would cut it)
    return endpoint(name="judge", model="judge-model", price_input=10.0, price_output=20.0, max_output_tokens=64,
                    **kw)


@pytest.mark.parametrize(("text", "rubric", "score", "raw"), [
    ('The answer matches.\n{"score": 1, "rationale": "same number"}', "correctness", 1.0, 1.0),
    ('```json\n{"Score": "0", "reason": "different value"}\n```', "correctness", 0.0, 0.0),
    ('{"correct": true, "explanation": "ok"}', "correctness", 1.0, 1.0),
    ('{"verdict": "incorrect"}', "correctness", 0.0, 0.0),
    ("Reasoning here.\nScore: 7", "niah", 6 / 9, 7.0),
    ("**Score:** 10", "niah", 1.0, 10.0),
    ("Rating: [[8]]", "niah", 7 / 9, 8.0),
    ("score = 4/10", "niah", 3 / 9, 4.0),
    ("CORRECT", "correctness", 1.0, 1.0),
    ("Incorrect.", "correctness", 0.0, 0.0),
    ("<think>score: 0 maybe</think>\nVerdict: yes", "faithfulness", 1.0, 1.0),
    ('first {"score": 0} then reconsidered {"score": 1, "rationale": "r"}', "correctness", 1.0, 1.0),
])
def test_verdicts_are_read_from_many_shapes(text, rubric, score, raw):
    v = parse_verdict(text, rubric)
    assert v.error is None and v.score == pytest.approx(score) and v.raw_score == raw and v.raw == text


@pytest.mark.parametrize(("text", "rubric"), [
    ("I think the answer is probably fine.", "correctness"),
    ('{"score": 11}', "niah"),
    ("Score: 0", "niah"),  # below the 1-10 scale
    ('{"score": 0.5}', "correctness"),
    ("CORRECT", "niah"),
    ("", "faithfulness"),
])
def test_unreadable_verdicts_are_errors(text, rubric):
    v = parse_verdict(text, rubric)
    assert v.score is None and v.error and v.raw == text


async def test_judge_grades_cases_and_its_cost_is_kept_apart():
    suite, model = make_suite(), MockModel()
    strategies = [StrategySpec(name="long_context"), StrategySpec(name="rag", params=RAG, label="rag")]
    results = await run_cases(suite, endpoint(), strategies, model, scorers=JUDGED, judge=judge_endpoint())
    lc, rag = results[("q1", "long_context")], results[("q1", "rag")]
    for r in (lc, rag):
        assert r.outcome == Outcome.ok
        assert r.scores["llm_judge"] == 1.0 and r.scores["llm_judge:niah"] == 1.0
        judge_calls = [c for c in r.calls if c.role == "judge"]
        own = [c for c in r.calls if c.role != "judge"]
        assert judge_calls and all(c.model == "judge-model" for c in judge_calls)
        assert r.usage.prompt_tokens == sum(c.usage.prompt_tokens for c in own)  # judge tokens not added
        assert r.cost_usd == pytest.approx(sum(c.cost_usd for c in own))
        assert r.metadata["judge_usage"]["prompt_tokens"] == sum(c.usage.prompt_tokens for c in judge_calls)
        assert r.metadata["judge_cost_usd"] == pytest.approx(sum(c.cost_usd for c in judge_calls))
        assert r.metadata["judge"]["llm_judge"]["raw"].endswith('"rationale": "matches"}')
        assert r.metadata["judge"]["llm_judge"]["model"] == "judge-model"
    assert lc.scores["llm_judge:faithfulness"] is None and len([c for c in lc.calls if c.role == "judge"]) == 2
    assert rag.scores["llm_judge:faithfulness"] == 1.0 and len([c for c in rag.calls if c.role == "judge"]) == 3
    assert all(b["model"] == "judge-model" for b in model.judge_requests)
    assert any("Reference answers:\n- 4418203\nAnswer to grade: 4418203" in b["messages"][-1]["content"]
               for b in model.judge_requests)


async def test_a_wrong_answer_is_judged_wrong():
    suite = make_suite()
    model = MockModel(answer=lambda messages: "1234567")
    results = await run_cases(suite, endpoint(), [StrategySpec(name="rag", params=RAG, label="rag")], model,
                              scorers=JUDGED, judge=judge_endpoint())
    r = results[("q1", "rag")]
    assert r.scores["llm_judge"] == 0.0 and r.scores["llm_judge:niah"] == 0.0
    assert r.scores["llm_judge:faithfulness"] == 0.0 and r.scores["exact_match"] == 0.0


async def test_a_malformed_verdict_is_a_judge_error_that_keeps_the_raw_reply():
    suite = make_suite()
    model = MockModel(judge=lambda messages: "Well, it depends on how you look at it.")
    results = await run_cases(suite, endpoint(), [StrategySpec(name="long_context")], model,
                              scorers=("exact_match", "llm_judge"), judge=judge_endpoint())
    r = results[("q1", "long_context")]
    assert r.outcome == Outcome.judge_error and r.error_class == "judge_unparseable"
    assert r.scores["llm_judge"] is None and r.scores["exact_match"] == 1.0  # the answer still scores
    assert r.metadata["judge"]["llm_judge"]["raw"] == "Well, it depends on how you look at it."
    assert r.metadata["judged_outcome"]["outcome"] == "ok"


async def test_a_failing_judge_endpoint_is_a_judge_error():
    suite, model = make_suite(), MockModel()

    def handler(request: httpx.Request) -> httpx.Response:
        if b"judge-model" in request.content:
            return httpx.Response(500, json={"error": {"message": "judge down"}})
        return model.handler(request)

    class Down:
        transport = httpx.MockTransport(handler)

    results = await run_cases(suite, endpoint(), [StrategySpec(name="long_context")], Down,
                              scorers=("exact_match", "llm_judge"), judge=judge_endpoint(max_retries=0))
    r = results[("q1", "long_context")]
    assert r.outcome == Outcome.judge_error and r.error_class == "judge_server_error"
    assert r.answer == "4418203" and r.scores["exact_match"] == 1.0


async def test_judge_verdicts_come_from_the_cache_on_a_rerun():
    suite, cache = make_suite(), MemoryCache()
    strategies = [StrategySpec(name="long_context")]
    first = MockModel()
    await run_cases(suite, endpoint(), strategies, first, scorers=JUDGED, judge=judge_endpoint(), cache=cache)
    second = MockModel()
    again = await run_cases(suite, endpoint(), strategies, second, scorers=JUDGED, judge=judge_endpoint(),
                            cache=cache)
    assert first.judge_requests and second.requests == []
    assert again[("q1", "long_context")].scores["llm_judge"] == 1.0


async def test_judge_scorers_need_a_judge_and_a_known_rubric():
    suite = make_suite()
    with pytest.raises(UserInputError, match="scorer 'llm_judge': rubric: Input should be 'correctness', 'niah', 'faithfulness' or 'kamradt'"):
        make_spec(suite, [endpoint()], [StrategySpec(name="long_context")], ["llm_judge:tone"])
    spec = make_spec(suite, [endpoint()], [StrategySpec(name="long_context")], ["llm_judge:niah"])
    with pytest.raises(UserInputError, match="need a judge endpoint"):
        Engine(suite=suite, endpoints={"mock": endpoint()}, spec=spec)


def test_judge_agreement_kappa_matches_sklearn():
    rng = random.Random(7)
    rows = []
    for i in range(60):
        em = float(rng.random() < 0.5)
        judge = em if rng.random() < 0.8 else 1.0 - em
        f1 = rng.random()
        rows.append(CaseRow(case_id=str(i), question_id=str(i), endpoint="e", strategy="s", strategy_name="s",
                            scores={"exact_match": em, "f1": f1, "llm_judge": judge}))
    rows.append(CaseRow(case_id="x", question_id="x", endpoint="e", strategy="s", strategy_name="s",
                        scores={"exact_match": None, "f1": None, "llm_judge": 1.0}))
    report = {a.versus: a for a in judge_agreement(rows)}
    scored = rows[:60]
    judge = [int(r.scores["llm_judge"]) for r in scored]
    em = [int(r.scores["exact_match"]) for r in scored]
    f1 = [int(r.scores["f1"] >= 0.5) for r in scored]
    assert report["exact_match"].n == 60 and report["exact_match"].judge == "llm_judge"
    assert report["exact_match"].kappa == pytest.approx(cohen_kappa_score(judge, em))
    assert report["f1>=0.5"].kappa == pytest.approx(cohen_kappa_score(judge, f1))
    a = report["exact_match"]
    assert a.both_correct + a.judge_only + a.metric_only + a.both_wrong == 60
    assert a.agreement == pytest.approx(sum(x == y for x, y in zip(judge, em, strict=True)) / 60)
