"""Page: two or more runs against a baseline run (``/compare?runs=…&baseline=…``), the same
computation as ``GET /api/compare``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from app.api.deps import SessionDep
from app.errors import ServiceError
from app.services import runs as run_service
from app.services import statistics
from app.web.auth import PageUser
from app.web.render import page
from evals import CtxevalError

router = APIRouter(include_in_schema=False)


def _ids(values: list[str]) -> list[int]:
    out = []
    for v in values:
        for part in v.split(","):
            if part.strip().isdigit():
                out.append(int(part.strip()))
    return list(dict.fromkeys(out))


@router.get("/compare", response_class=HTMLResponse)
def compare_runs_page(request: Request, session: SessionDep, _: PageUser, runs: list[str] = Query([]),
                      baseline: str | None = Query(None), scorer: str | None = Query(None)) -> HTMLResponse:
    ids = _ids(runs)
    base = int(baseline) if baseline and baseline.isdigit() else None
    records = [run_service.get(session, i) for i in ids]
    if base is None and records:  # the oldest run is the natural baseline
        base = min(ids)
    scorers: list[str] = []
    for r in records:
        scorers += [s for s in r.spec.scorers if s not in scorers and all(s in x.spec.scorers for x in records)]
    comparison, error = None, None
    try:
        comparison = statistics.compare_runs(session, ids, baseline=base, scorer=scorer or None)
    except (CtxevalError, ServiceError) as e:
        error = getattr(e, "message", None) or str(e)
    return page(request, "runs_compare.html", nav="runs", runs=records, baseline=base, scorers=scorers,
                scorer=comparison.scorer if comparison else (scorer or ""), comparison=comparison, error=error,
                status_code=422 if error else 200)
