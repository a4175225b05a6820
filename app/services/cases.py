"""Cases: the engine's :class:`CaseResult` split into a light row and a detail row, and back."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app import crud
from app.errors import NotFoundError
from app.models import CaseDetailRecord, CaseRecord, RunRecord, as_utc
from app.schemas import CasePublic, CasesPublic
from app.services import prompt_store
from evals import CaseResult, ErrorClassCount, health_of, scrub

ERROR_MESSAGE_CHARS = 2000


def run_verdict(session: Session, record: RunRecord) -> tuple[str, str | None]:
    """The status and reason of a run whose cases are all stored (``evals.summary.health_of``):
    ``failed`` when no case got an answer, ``completed_with_errors`` when some errored, else
    ``completed``; the reason names the error share, the top error classes with an example message
    and the endpoints' base URLs."""
    outcomes = crud.outcome_counts(session, run_id=record.id or 0)
    errors = [ErrorClassCount(error_class=c, count=n, example=m, endpoints=eps)
              for c, n, m, eps in crud.error_classes(session, run_id=record.id or 0)]
    failing = {name for e in errors for name in e.endpoints}
    urls = sorted({str(e.get("base_url")) for e in record.spec.get("endpoints", [])
                   if e.get("base_url") and (not failing or e.get("name") in failing)})
    health = health_of(outcomes, errors, urls=urls)
    return health.status, health.reason


def light_fields(result: CaseResult, *, run_id: int, position: int) -> dict[str, Any]:
    u = result.usage
    return {
        "run_id": run_id, "case_id": result.case_id, "position": position, "question_id": result.question_id,
        "endpoint": result.endpoint, "strategy": result.strategy, "strategy_name": result.strategy_name,
        "outcome": result.outcome.value, "error_class": result.error_class,
        # the engine masked its endpoints' keys; anything else shaped like a credential goes here
        "error_message": (result.error_message or None) and scrub(result.error_message)[:ERROR_MESSAGE_CHARS],
        "scores": dict(result.scores), "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens, "cached_tokens": u.cached_tokens,
        "reasoning_tokens": u.reasoning_tokens, "estimated_prompt_tokens": u.estimated_prompt_tokens,
        "cost_usd": result.cost_usd, "latency_s": result.latency_s, "ttft_s": result.ttft_s,
        "context_tokens": result.context_tokens, "depth": result.depth, "route": result.route,
        "n_calls": len(result.calls), "from_cache": result.from_cache,
    }


def detail_fields(result: CaseResult, *, prompt: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The detail row; ``prompt`` is the stored form of the prompt (see ``prompt_store``)."""
    data = result.model_dump(mode="json", exclude={"prompt"} if prompt is not None else None)
    return {
        "prompt": prompt if prompt is not None else data["prompt"], "answer": result.answer, "reasoning": result.reasoning,
        "retrieved": data["retrieved"], "calls": data["calls"],
        "extra": {"steps": data["steps"], "truncation": data["truncation"], "metadata": data["metadata"],
                  "error_message": result.error_message},
    }


def to_result(light: CaseRecord, detail: CaseDetailRecord | None = None,
              blobs: dict[str, str] | None = None) -> CaseResult:
    """Rebuild the engine's result; without ``detail`` the large fields are left empty. ``blobs``
    holds the prompt blobs the detail refers to (:func:`prompt_blobs_for`)."""
    data: dict[str, Any] = {
        "case_id": light.case_id, "question_id": light.question_id, "endpoint": light.endpoint,
        "strategy": light.strategy, "strategy_name": light.strategy_name, "outcome": light.outcome,
        "error_class": light.error_class, "error_message": light.error_message, "scores": light.scores,
        "usage": {"prompt_tokens": light.prompt_tokens, "completion_tokens": light.completion_tokens,
                  "cached_tokens": light.cached_tokens, "reasoning_tokens": light.reasoning_tokens,
                  "estimated_prompt_tokens": light.estimated_prompt_tokens},
        "cost_usd": light.cost_usd, "latency_s": light.latency_s, "ttft_s": light.ttft_s,
        "context_tokens": light.context_tokens, "depth": light.depth, "route": light.route,
        "from_cache": light.from_cache,
    }
    if detail is not None:
        extra = detail.extra or {}
        data.update(prompt=prompt_store.join_messages(detail.prompt, blobs or {}), answer=detail.answer, reasoning=detail.reasoning,
                    retrieved=detail.retrieved, calls=detail.calls, steps=extra.get("steps", []),
                    truncation=extra.get("truncation"), metadata=extra.get("metadata", {}))
        if extra.get("error_message") is not None:
            data["error_message"] = extra["error_message"]
    return CaseResult.model_validate(data)


def to_public(light: CaseRecord) -> CasePublic:
    return CasePublic.model_validate({**light.model_dump(), "finished_at": as_utc(light.finished_at)})


def stored_fields(result: CaseResult, *, run_id: int, position: int,
                  shared: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The light row, the detail row (prompt by reference) and the prompt blobs of one case."""
    prompt, blobs = prompt_store.split_messages(result.model_dump(mode="json", include={"prompt"})["prompt"], shared)
    return light_fields(result, run_id=run_id, position=position), detail_fields(result, prompt=prompt), blobs


def store(session: Session, *, run_id: int, position: int, result: CaseResult) -> None:
    """Commit one finished case at once (upsert keyed by run and case id)."""
    light, detail, blobs = stored_fields(result, run_id=run_id, position=position)
    crud.write_cases(session, rows=[(light, detail)],
                     blobs=[{"run_id": run_id, "sha256": h, "text": t} for h, t in blobs.items()])
    session.commit()


def prompt_blobs_for(session: Session, *, run_id: int, details: list[CaseDetailRecord | None]) -> dict[str, str]:
    hashes: set[str] = set()
    for d in details:
        if d is not None:
            hashes |= prompt_store.blob_hashes(d.prompt)
    return crud.prompt_blobs(session, run_id=run_id, hashes=sorted(hashes))


def list_public(session: Session, *, run_id: int, offset: int, limit: int, **filters: Any) -> CasesPublic:
    conds = crud.case_filters(run_id=run_id, **filters)
    rows, count = crud.list_cases(session, conds=conds, offset=offset, limit=limit)
    return CasesPublic(data=[to_public(r) for r in rows], count=count)


def get_result(session: Session, *, run_id: int, case_id: str) -> CaseResult:
    found = crud.get_case(session, run_id=run_id, case_id=case_id)
    if found is None:
        raise NotFoundError(f"case '{case_id}' not found in run {run_id}", field="case_id")
    light, detail = found
    return to_result(light, detail, prompt_blobs_for(session, run_id=run_id, details=[detail]))
