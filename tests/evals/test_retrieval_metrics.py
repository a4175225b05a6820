"""Ranking scorers on cases (recall@k, MRR, nDCG) and the attribution of wrong retrieval answers."""

from __future__ import annotations

import math

import pytest

from evals.diagnostics import error_attribution, primary_answer_scorer
from evals.domain import CaseResult, Evidence, Question, RetrievedChunk, StrategySpec
from evals.errors import UserInputError
from evals.scorers import get_scorer, score_case
from evals.summary import CaseRow
from tests.fakes.fake_model import answer_messages
from tests.fakes.mock_transport import MockModel
from tests.retrieval_suite import LISBON, endpoint, make_suite, run_cases

RANKED = ["d0", "d2", "d0", "d1", "d3"]  # documents of the retrieved chunks, best first


def case(retrieval: bool = True) -> CaseResult:
    chunks = [RetrievedChunk(chunk_id=f"{d}#{i}", doc_id=d, start=0, end=10, score=1.0 - i / 10, rank=i)
              for i, d in enumerate(RANKED)]
    chunks.reverse()  # stored in prompt order (e.g. order: position); the scorers must use the rank
    return CaseResult(case_id="c", question_id="q", endpoint="e", strategy="rag", strategy_name="rag",
                      retrieved=chunks, metadata={"retrieval": True} if retrieval else {})


QUESTION = Question(id="q", question="?", answers=["x"], evidence=[Evidence(doc_id="d2"), Evidence(doc_id="d3")])


def test_ranking_scorers_on_a_case_use_the_retrieval_rank():
    names = ["recall_at_k", "recall_at_k:2", "mrr", "mrr:1", "ndcg", "ndcg:2"]
    scores = score_case(case(), QUESTION, names)
    # distinct documents by rank: d0, d2, d1, d3
    ideal = 1 + 1 / math.log2(3)
    assert scores == pytest.approx({
        "recall_at_k": 1.0, "recall_at_k:2": 0.5, "mrr": 0.5, "mrr:1": 0.0,
        "ndcg": (1 / math.log2(3) + 1 / math.log2(5)) / ideal, "ndcg:2": (1 / math.log2(3)) / ideal})


def test_ranking_scorers_do_not_apply_without_retrieval_or_evidence():
    names = ["recall_at_k", "mrr", "ndcg"]
    assert set(score_case(case(retrieval=False), QUESTION, names).values()) == {None}
    no_evidence = QUESTION.model_copy(update={"evidence": []})
    assert set(score_case(case(), no_evidence, names).values()) == {None}


@pytest.mark.parametrize("name", ["recall_at_k:0", "ndcg:two", "mrr:", "precision_at_k:3"])
def test_bad_ranking_scorer_names_are_refused(name):
    with pytest.raises(UserInputError, match=r"unknown scorer|scorer '(recall_at_k|ndcg|mrr)'") as e:
        get_scorer(name)
    assert e.value.field and e.value.field.startswith("scorer")


def test_judge_scorers_are_graded_by_a_model_not_scored_here():
    judge = get_scorer("llm_judge:faithfulness")
    assert judge.needs_model and judge.params.rubric == "faithfulness" and not judge.grades_answer
    with pytest.raises(NotImplementedError):
        get_scorer("llm_judge").score(case(), QUESTION)
    assert score_case(case(), QUESTION, ["llm_judge", "mrr"]) == {"mrr": 0.5}


async def test_wrong_answers_are_split_into_not_retrieved_and_retrieved_but_wrong():
    suite = make_suite()
    start = suite.documents[2].text.index(LISBON)
    reworded = Question(id="q3", question="Which code belongs to the Portuguese capital?", answers=["4418203"],
                        evidence=[Evidence(doc_id="d2", start=start, end=start + len(LISBON) - 1)])
    suite = suite.model_copy(update={"questions": [*suite.questions, reworded]})

    def answer(messages):  # right on lisbon, wrong on oslo although the passage is there
        return "0000000" if "oslo?" in str(messages[-1]["content"]) else answer_messages(messages)

    strategies = [StrategySpec(name="rag", params={"chunk_tokens": 48, "overlap_tokens": 0, "k": 1}, label="rag"),
                  StrategySpec(name="long_context")]
    results = await run_cases(suite, endpoint(), strategies, MockModel(answer=answer),
                              scorers=("exact_match", "f1", "mrr"))
    assert results[("q1", "rag")].metadata["attribution"] == "correct"
    assert results[("q2", "rag")].metadata["attribution"] == "retrieved_wrong"
    assert results[("q2", "rag")].scores["retrieval_recall"] == 1.0
    assert results[("q3", "rag")].metadata["attribution"] == "not_retrieved"
    assert results[("q3", "rag")].scores["mrr"] == 0.0
    assert "attribution" not in results[("q1", "long_context")].metadata

    rows = [CaseRow.from_result(r) for r in results.values()]
    (row,) = error_attribution(rows)
    assert (row.strategy, row.scorer, row.n, row.correct, row.wrong) == ("rag", "exact_match", 3, 1, 2)
    assert (row.not_retrieved, row.retrieved_wrong, row.not_retrieved_share) == (1, 1, 0.5)
    (strict,) = error_attribution(rows, scorer="f1", threshold=1.0)
    assert strict.scorer == "f1" and strict.wrong == 2


def test_attribution_uses_the_first_correctness_scorer():
    assert primary_answer_scorer(["recall_at_k:3", "llm_judge:faithfulness", "llm_judge", "f1"]) == "llm_judge"
    assert primary_answer_scorer(["mrr", "ndcg", "retrieval_recall"]) is None
