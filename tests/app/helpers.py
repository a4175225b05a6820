"""Stored rows for tests that need a run without executing one."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app import crud
from app.models import RunRecord
from app.services import cases as case_service
from evals.domain import CallRecord, CaseResult, Endpoint, Outcome, RunSpec, StrategySpec, Suite, Usage
from tests.app.factories import suite_body


def stored_run(session: Session, *, n_questions: int = 3, strategies: tuple[str, ...] = ("long_context", "rag"),
               scorers: tuple[str, ...] = ("exact_match", "f1"), status: str = "completed") -> RunRecord:
    suite = Suite.model_validate(suite_body(n_questions=n_questions))
    record = crud.get_suite_by_hash(session, content_hash=suite.content_hash) or crud.create_suite(
        session, suite=suite, content_hash=suite.content_hash)
    endpoint = Endpoint(name="fake", base_url="http://127.0.0.1:9/v1", model="m")
    spec = RunSpec(suite_hash=suite.content_hash, suite_name=suite.name, endpoints=[endpoint.public()],
                   strategies=[StrategySpec(name=s) for s in strategies], scorers=list(scorers))
    run = crud.create_run(session, run=RunRecord(
        suite_id=record.id, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash, status=status,
        total_cases=n_questions * len(strategies)))
    session.commit()
    return run


def case_result(question_id: str, strategy: str, *, scores: dict[str, float | None] | None = None,
                outcome: Outcome = Outcome.ok, prompt_tokens: int | None = 100, **kw: Any) -> CaseResult:
    from evals.domain import case_id_for

    data: dict[str, Any] = dict(
        case_id=case_id_for(question_id, "fake", strategy), question_id=question_id, endpoint="fake",
        strategy=strategy, strategy_name=strategy, outcome=outcome, answer=f"answer to {question_id}",
        prompt=[{"role": "user", "content": "x" * 50}], reasoning="thinking",
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=5, cached_tokens=10),
        calls=[CallRecord(usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=5))],
        cost_usd=0.001, latency_s=0.5, ttft_s=0.1, scores=scores if scores is not None else {"exact_match": 1.0},
    )
    data.update(kw)
    return CaseResult(**data)


def store(session: Session, run: RunRecord, results: list[CaseResult]) -> None:
    for i, r in enumerate(results):
        case_service.store(session, run_id=run.id, position=i, result=r)
