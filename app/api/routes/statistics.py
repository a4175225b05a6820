from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import IdPath, SessionDep
from app.schemas import ERROR_RESPONSES, MAX_ID, RunsComparison
from app.services import export
from app.services import runs as run_service
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


@router.get("/summary/export", summary="The summary table as CSV or Markdown",
            responses={200: {"content": {"text/csv": {}, "text/markdown": {}},
                             "description": "one row per endpoint × strategy: each scorer's mean, 95% "
                                            "interval and n, outcomes, tokens, cost, token share, latency"}})
def export_summary(session: SessionDep, run_id: IdPath,
                   format: Literal["csv", "markdown"] = Query("csv", description="csv or markdown")) -> Response:
    summary = service.summary(session, run_id)
    run = run_service.get_record(session, run_id)
    if format == "csv":
        return Response(export.summary_csv(summary), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="run-{run_id}-summary.csv"'})
    title = f"Run {run_id}" + (f": {run.name}" if run.name else "")
    return Response(export.summary_markdown(title, summary), media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}-summary.md"'})


@router.get("/compare", response_model=PairedComparison,
            summary="Strategy b against strategy a on the same questions (paired)")
def run_compare(session: SessionDep, run_id: IdPath,
                a: str = Query(description="a strategy key of the run, e.g. long_context"),
                b: str = Query(description="another strategy key, e.g. rag"),
                scorer: str | None = Query(None, description="default: the run's first scorer"),
                endpoint: str | None = Query(None, description="pair within this endpoint only")) -> PairedComparison:
    return service.paired(session, run_id, a=a, b=b, scorer=scorer, endpoint=endpoint)


compare_router = APIRouter(tags=["statistics"], responses=ERROR_RESPONSES)


@compare_router.get("/compare", response_model=RunsComparison,
                    summary="Two or more runs against a baseline run, per endpoint × strategy")
def compare_runs(session: SessionDep,
                 runs: Annotated[list[Annotated[int, Query(ge=1, le=MAX_ID)]], Query(
                     description="run ids: ?runs=3&runs=5 (two to ten)")],
                 baseline: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                                       description="the run the others are measured "
                                                                   "against; default: the first of runs")] = None,
                 scorer: str | None = Query(None, description="default: the baseline's first scorer"),
                 ) -> RunsComparison:
    """On the questions both runs scored: the paired difference (other − baseline) with its paired
    bootstrap 95% interval, wins/losses/ties and exact McNemar p-value for 0/1 scores; where the
    questions differ also the unpaired difference, labelled; cost and latency deltas; fixed and broken
    questions."""
    return service.compare_runs(session, runs, baseline=baseline, scorer=scorer)
