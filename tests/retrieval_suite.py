"""A small suite for retrieval tests: four documents on distinct topics, two needles, and helpers to
run it through the engine against the in-process fake model (``tests.fakes.mock_transport``)."""

from __future__ import annotations

from typing import Any

from evals.domain import CaseResult, Document, Endpoint, Evidence, Question, StrategySpec, Suite
from evals.retrieval.base import IndexCache
from evals.runner import Engine, make_spec, plan_cases, run_all

TOPICS = ["The harbour master counts ships every morning. Fishing boats leave before dawn. ",
          "The orchard grows apples and pears. Farmers prune the trees in winter. ",
          "The library lends books and maps. Readers whisper in the reading room. ",
          "The railway station has four platforms. Trains to the coast leave hourly. "]
LISBON = "The special magic number for lisbon is: 4418203. "
OSLO = "The special magic number for oslo is: 7730019. "


def make_suite() -> Suite:
    docs = []
    for i, topic in enumerate(TOPICS):
        text = topic * 20
        if i == 2:
            text = topic * 10 + LISBON + topic * 10
        if i == 3:
            text = topic * 15 + OSLO + topic * 5
        docs.append(Document(id=f"d{i}", title=f"Doc {i}", text=text))
    ls, os_ = docs[2].text.index(LISBON), docs[3].text.index(OSLO)
    questions = [
        Question(id="q1", question="What is the special magic number for lisbon?", answers=["4418203"],
                 evidence=[Evidence(doc_id="d2", start=ls, end=ls + len(LISBON) - 1)]),
        Question(id="q2", question="What is the special magic number for oslo?", answers=["7730019"],
                 evidence=[Evidence(doc_id="d3", start=os_, end=os_ + len(OSLO) - 1)]),
    ]
    return Suite(name="topics", documents=docs, questions=questions)


def endpoint(**kw: Any) -> Endpoint:
    base: dict[str, Any] = dict(name="mock", base_url="http://127.0.0.1:9/v1", model="m", concurrency=2,
                                max_output_tokens=16, price_input=1.0, price_output=2.0)
    base.update(kw)
    return Endpoint(**base)


async def run_cases(suite: Suite, ep: Endpoint, strategies: list[StrategySpec], model: Any, *,
                    scorers: tuple[str, ...] = ("exact_match", "f1"), **engine_kw: Any
                    ) -> dict[tuple[str, str], CaseResult]:
    """Every case of the run by (question id, strategy key); a fresh index cache unless one is given."""
    spec = make_spec(suite, [ep], strategies, list(scorers))
    engine_kw.setdefault("index_cache", IndexCache())
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec, transport=model.transport,
                      **engine_kw) as engine:
        return {(r.question_id, r.strategy): r async for r in run_all(engine, plan_cases(spec, suite))}
