from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import IdPath, Limit, Offset, SessionDep
from app.errors import ServiceError
from app.schemas import ERROR_RESPONSES, CasesPublic
from app.services import cases as service
from app.services import export
from app.services import runs as run_service
from evals import CaseResult, Outcome

router = APIRouter(prefix="/runs/{run_id}", tags=["cases"], responses=ERROR_RESPONSES)


@router.get("/cases", response_model=CasesPublic, summary="A run's cases, filtered and paginated")
def list_cases(
    session: SessionDep, run_id: IdPath,
    offset: Offset = 0, limit: Limit = 100,
    strategy: str | None = Query(None, description="a strategy key, e.g. rag[k=5]"),
    endpoint: str | None = Query(None, description="an endpoint name"),
    outcome: Outcome | None = None,
    question_id: str | None = None,
    scorer: str | None = Query(None, description="the score min_score/max_score apply to; default: the "
                                                 "run's first scorer"),
    min_score: float | None = Query(None, allow_inf_nan=False),
    max_score: float | None = Query(None, allow_inf_nan=False),
) -> CasesPublic:
    run = run_service.get_record(session, run_id)
    if (min_score is not None or max_score is not None) and scorer is None:
        scorers = run.spec.get("scorers") or []
        if not scorers:
            raise ServiceError("the run has no scorers to filter on", field="scorer")
        scorer = scorers[0]
    return service.list_public(session, run_id=run_id, offset=offset, limit=limit, strategy=strategy,
                               endpoint=endpoint, outcome=outcome.value if outcome else None,
                               question_id=question_id, scorer=scorer, min_score=min_score, max_score=max_score)


@router.get("/cases/{case_id}", response_model=CaseResult, summary="One case with every field")
def get_case(session: SessionDep, run_id: IdPath, case_id: str) -> CaseResult:
    run_service.get_record(session, run_id)
    return service.get_result(session, run_id=run_id, case_id=case_id)


@router.get("/export", summary="Every case of the run, streamed as CSV or JSON lines",
            responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}},
                             "description": "CSV: one row per case with a column per score; JSONL: one "
                                            "case result per line"}})
def export_cases(request: Request, session: SessionDep, run_id: IdPath,
                 format: Literal["csv", "jsonl"] = "csv",
                 raw: bool = Query(False, description="CSV only: write cells as stored; by default a text cell "
                                                      "starting with = + - @, a tab or a carriage return gets "
                                                      "a leading ' so spreadsheets do not run it")
                 ) -> StreamingResponse:
    run = run_service.get_record(session, run_id)
    db = request.app.state.db
    name = f"run-{run_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return StreamingResponse(export.stream_csv(db, run_id, list(run.spec.get("scorers") or []), raw=raw),
                                 media_type="text/csv", headers=headers)
    return StreamingResponse(export.stream_jsonl(db, run_id), media_type="application/x-ndjson", headers=headers)
