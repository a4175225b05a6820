"""Stored suites, endpoints, runs and cases for the page tests, without executing anything.

Suite text, question text and one answer carry :data:`HOSTILE`; the endpoint's key is :data:`SECRET`.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app import crud
from app.models import RunRecord
from app.services import cases as case_service
from evals.domain import (
    CallRecord,
    CaseResult,
    Endpoint,
    Outcome,
    RetrievedChunk,
    RunSpec,
    StrategySpec,
    Suite,
    Usage,
    case_id_for,
)

HOSTILE = "<script>alert(1)</script>"
SECRET = "sk-SECRET-never-shown-7f3a9c"
LENGTHS = [1000, 2000, 4000]
DEPTHS = [0.0, 50.0, 100.0]
FILLER = "The grass is green. The sky is blue. "


def suite(n_questions: int = 9) -> Suite:
    docs, questions = [], []
    for i in range(n_questions):
        needle = f"The magic number of city{i} is: {1000 + i}."
        text = FILLER * 10 + needle + " " + FILLER * 5 + HOSTILE
        start = text.index(needle)
        docs.append({"id": f"d{i}", "title": f"Doc {i}", "text": text})
        questions.append({
            "id": f"q{i}", "question": f"What is the magic number of city{i}? {HOSTILE}", "answers": [str(1000 + i)],
            "evidence": [{"doc_id": f"d{i}", "start": start, "end": start + len(needle)}], "doc_ids": [f"d{i}"],
            "metadata": {"depth": DEPTHS[i % 3], "context_tokens": LENGTHS[i // 3 % 3]}})
    return Suite.model_validate({"name": f"needles {HOSTILE}", "description": f"described {HOSTILE}",
                                 "documents": docs, "questions": questions, "default_scorers": ["exact_match"]})


def endpoint(name: str = "fake", base_url: str = "http://127.0.0.1:9/v1") -> Endpoint:
    return Endpoint(name=name, base_url=base_url, model="fake-model", api_key=SECRET, price_input=1.0,
                    price_output=2.0, context_window=8192)


def _chunks(s: Suite, i: int, hit: bool) -> list[RetrievedChunk]:
    q = s.questions[i]
    ev = q.evidence[0]
    doc = s.document_map()[ev.doc_id]
    assert ev.start is not None and ev.end is not None
    lo = max(ev.start - 20, 0)
    gold = RetrievedChunk(chunk_id=f"{doc.id}#1", doc_id=doc.id, start=lo, end=ev.end + 10, score=3.5, rank=0,
                          text=doc.text[lo:ev.end + 10], gold=True)
    other = RetrievedChunk(chunk_id=f"{doc.id}#0", doc_id=doc.id, start=0, end=40, score=1.2, rank=1,
                           text=doc.text[0:40], gold=False)
    return [gold, other] if hit else [other]


def case(s: Suite, i: int, strategy: str, endpoint_name: str = "fake", *, judge: bool = False,
         **kw: Any) -> CaseResult:
    q = s.questions[i]
    name = spec_of(strategy).name
    right = (name == "long_context" and i % 3 != 2) or (name == "rag" and i % 2 == 0)
    answer = q.answers[0] if right else f"not sure {HOSTILE}"
    scores: dict[str, float | None] = {"exact_match": 1.0 if right else 0.0}
    retrieved: list[RetrievedChunk] = []
    if judge:  # the judge agrees with exact match except on question 0
        scores["llm_judge:correctness"] = scores["exact_match"] if i else 1.0 - scores["exact_match"]
    if name == "rag":
        retrieved = _chunks(s, i, hit=i % 2 == 0)
        scores["retrieval_recall"] = 1.0 if i % 2 == 0 else 0.0
    prompt_tokens = 100 if name == "rag" else int(q.metadata["context_tokens"]) + 40
    data: dict[str, Any] = dict(
        case_id=case_id_for(q.id, endpoint_name, strategy), question_id=q.id, endpoint=endpoint_name,
        strategy=strategy, strategy_name=name, outcome=Outcome.ok, answer=answer,
        prompt=[{"role": "system", "content": "Answer from the documents."},
                {"role": "user", "content": f"{q.question}\nQuestion: {q.question}"}],
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=4, cached_tokens=16 if name != "rag" else 0),
        calls=[CallRecord(usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=4))],
        cost_usd=(prompt_tokens * 1.0 + 4 * 2.0) / 1e6, latency_s=0.2 + i * 0.05, ttft_s=0.05 + i * 0.01,
        retrieved=retrieved, scores=scores, context_tokens=q.metadata["context_tokens"], depth=q.metadata.get("depth"),
        metadata={"retrieval": True} if retrieved else {})
    data.update(kw)
    return CaseResult(**data)


def spec_of(key: str) -> StrategySpec:
    """``rag[k=2]`` → rag with k=2; any other key → that strategy with a label when it is not a name."""
    if key == "rag[k=2]":
        return StrategySpec(name="rag", params={"k": 2})
    if key in ("no_context", "long_context", "rag", "self_route"):
        return StrategySpec(name=key)
    return StrategySpec(name="rag", params={"k": 3}, label=key)


def stored_run(session: Session, *, strategies: tuple[str, ...] = ("long_context", "rag[k=2]"),
               n_questions: int = 9, status: str = "completed", with_cases: bool = True,
               endpoints: tuple[str, ...] = ("fake",), depth: bool = True, judge: bool = False) -> RunRecord:
    s = suite(n_questions)
    if not depth:
        for q in s.questions:
            q.metadata.pop("depth")
    record = crud.get_suite_by_hash(session, content_hash=s.content_hash) or crud.create_suite(
        session, suite=s, content_hash=s.content_hash)
    for name in endpoints:
        if crud.get_endpoint_by_name(session, name=name) is None:
            crud.create_endpoint(session, endpoint=endpoint(name))
    specs = [spec_of(k) for k in strategies]
    spec = RunSpec(suite_hash=s.content_hash, suite_name=s.name,
                   endpoints=[endpoint(e).public() for e in endpoints], strategies=specs,
                   scorers=["exact_match", "retrieval_recall"])
    assert [x.key for x in specs] == list(strategies)
    run = crud.create_run(session, run=RunRecord(
        suite_id=record.id, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash, status=status,
        total_cases=n_questions * len(strategies) * len(endpoints), name=f"nightly {HOSTILE}"))
    session.commit()
    if with_cases:
        position = 0
        for e in endpoints:
            for i in range(n_questions):
                for k in strategies:
                    case_service.store(session, run_id=run.id or 0, position=position, result=case(s, i, k, e, judge=judge))
                    position += 1
    return run
