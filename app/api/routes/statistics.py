from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.api.deps import IdPath, SessionDep
from app.schemas import ERROR_RESPONSES
from app.services import statistics as service
from evals import PairedComparison, RunSummary

router = APIRouter(prefix="/runs/{run_id}", tags=["statistics"], responses=ERROR_RESPONSES)


@router.get("/summary", response_model=RunSummary,
            summary="Scores with confidence intervals, tokens, cost and latency per endpoint × strategy")
def run_summary(session: SessionDep, run_id: IdPath,
                primary: str | None = Query(None, description="the scorer crossovers use; default: the "
                                                              "run's first scorer"),
                length_edges: Annotated[list[int] | None, Query(
                    description="context-length bucket edges in tokens (default: powers of two)")] = None,
                alpha: float = Query(0.05, gt=0, lt=0.5, description="significance level of every test "
                                     "(Holm-adjusted comparisons and crossovers; one-sided for the recommendation)"),
                margin: float = Query(0.02, ge=0, lt=1, description="how much worse than the best (0..1 scale) "
                                      "the recommended strategy may be; 0.02 = 2 points"),
                threshold: float = Query(0.856, gt=0, le=1, description="effective-length threshold (RULER: 0.856)"),
                ) -> Response:
    """Computed from the cases stored so far, so it also works while the run is going (a finished run's
    is computed once and stored). Carries the run's health, the Recommendation, crossovers, effective
    lengths and Holm-adjusted comparisons."""
    return Response(service.summary_json(session, run_id, primary=primary, length_edges=length_edges, alpha=alpha,
                                         margin=margin, threshold=threshold), media_type="application/json")


@router.get("/compare", response_model=PairedComparison,
            summary="Strategy b against strategy a on the same questions (paired)")
def run_compare(session: SessionDep, run_id: IdPath,
                a: str = Query(description="a strategy key of the run, e.g. long_context"),
                b: str = Query(description="another strategy key, e.g. rag"),
                scorer: str | None = Query(None, description="default: the run's first scorer"),
                endpoint: str | None = Query(None, description="pair within this endpoint only")) -> PairedComparison:
    return service.paired(session, run_id, a=a, b=b, scorer=scorer, endpoint=endpoint)
