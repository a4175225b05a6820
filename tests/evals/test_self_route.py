"""Self-Route as Li et al. (2024) run it: their route instruction, every declining reply routed to long
context (never kept as the answer), and their retrieval settings as ``self_route_paper``."""

from __future__ import annotations

from typing import Any

import pytest

from evals import prompts
from evals.domain import StrategySpec
from evals.retrieval.chunking import ChunkingParams, chunk_document
from evals.strategies import build_strategy
from evals.tokens import local_tokenizer
from tests.evals.test_runner import endpoint, make_suite, run_cases
from tests.fakes.fake_model import answer_messages
from tests.fakes.mock_transport import MockModel


def test_route_instruction_is_the_papers_wording() -> None:
    assert prompts.ROUTE_INSTRUCTION == ("Write unanswerable if the query can not be answered based on the "
                                         "provided text.")


@pytest.mark.parametrize("reply", ["unanswerable", "Unanswerable.", "**unanswerable**", "The question is unanswerable.",
                                   "This query is unanswerable based on the provided text.", "'unanswerable'",
                                   "`UNANSWERABLE`"])
def test_every_declining_reply_counts(reply: str) -> None:
    assert prompts.is_unanswerable(reply)


@pytest.mark.parametrize("reply", ["4418203", "The answerable part is 12", "Unanswered questions remain: 7"])
def test_answers_are_not_declines(reply: str) -> None:
    assert not prompts.is_unanswerable(reply)


async def test_a_wordy_decline_is_routed_to_long_context_and_never_kept() -> None:
    def model(messages: list[dict[str, Any]]) -> str:
        user = str(messages[-1]["content"])
        if prompts.ROUTE_INSTRUCTION in user:  # the retrieval step
            return "This query is unanswerable based on the provided text."
        return answer_messages(messages)

    mock = MockModel(answer=model)
    results = await run_cases(make_suite(), endpoint(), [StrategySpec(name="self_route")], mock)
    case = results[("q1", "self_route")]
    assert case.route == "long_context"
    assert case.answer == "4418203"
    assert case.metadata["rag_answer"] == "This query is unanswerable based on the provided text."
    assert [c.role for c in case.calls] == ["route", "answer"]


def test_paper_settings_are_a_strategy_of_their_own() -> None:
    paper = build_strategy(StrategySpec(name="self_route_paper")).params
    assert (paper.retriever, paper.chunking, paper.chunk_tokens, paper.overlap_tokens, paper.k, paper.order) == \
        ("dense", "words", 300, 0, 5, "score")
    default = build_strategy(StrategySpec(name="self_route")).params
    assert (default.retriever, default.chunking) == ("bm25", "sentence")


def test_word_chunks_hold_300_words() -> None:
    from evals.domain import Document

    text = " ".join(f"w{i}" for i in range(700))
    chunks = chunk_document(Document(id="d", text=text), 0, ChunkingParams(chunking="words", chunk_tokens=300,
                                                                         overlap_tokens=0), local_tokenizer("cl100k"))
    assert [len(c.text.split()) for c in chunks] == [300, 300, 100]
    assert chunks[1].text.split()[0] == "w300"
