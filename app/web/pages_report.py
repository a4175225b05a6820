"""Pages: a run's report (summary table, charts, paired comparison), its cases, and one question's cases."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse

from app.api.deps import SessionDep
from app.errors import ServiceError
from app.schemas import RunPublic
from app.services import cases as case_service
from app.services import report, run_views, statistics
from app.services import runs as run_service
from app.web import charts
from app.web.auth import PageUser
from app.web.render import page
from evals import CaseRow, CtxevalError, Outcome, PairedComparison, RunSummary, registry

router = APIRouter(include_in_schema=False)
CASES_PER_PAGE = 100


def _labels(run: RunPublic) -> charts.Labels:
    return charts.Labels([s.key for s in run.spec.strategies], [e["name"] for e in run.spec.endpoints])


def build_charts(run: RunPublic, summary: RunSummary, rows: list[CaseRow]) -> dict[str, Any]:
    labels = _labels(run)
    has_retrieval = any((c := registry.find("strategy", s.name)) is not None and c.needs_retrieval
                        for s in run.spec.strategies)
    return {
        "length": charts.score_by_length(summary, labels),
        "depth": charts.depth_heatmaps(summary, labels),
        "cost": charts.cost_vs_score(summary, labels),
        "latency": charts.distribution(rows, labels, metric="latency_s"),
        "ttft": charts.distribution(rows, labels, metric="ttft_s"),
        "recall": charts.recall_chart(report.recall_vs_answer(rows, summary.primary), labels,
                                      has_retrieval=has_retrieval,
                                      nothing_answered=summary.health is not None and summary.health.answered == 0),
    }


def _comparison(session: Any, run_id: int, a: str, b: str, scorer: str | None, endpoint: str | None,
                rows: list[Any] | None = None) -> tuple[PairedComparison | None, str | None]:
    try:
        return statistics.paired(session, run_id, a=a, b=b, scorer=scorer, endpoint=endpoint, rows=rows), None
    except (CtxevalError, ServiceError) as e:
        return None, str(e)


@dataclass
class ReportData:
    summary: RunSummary
    charts: dict[str, Any] | None
    comparison: PairedComparison | None


def _build_report(session: Any, run: RunPublic) -> ReportData:
    rows = statistics.case_rows(session, run.id)  # read once for the summary, charts and comparison
    summary = statistics.summary(session, run.id, rows=rows)
    pair = report.default_pair(run.spec)
    comparison = _comparison(session, run.id, pair[0], pair[1], None, None, rows)[0] if pair and rows else None
    return ReportData(summary, build_charts(run, summary, rows) if rows else None, comparison)


def _chart(data: Any) -> Any:
    return [charts.Chart(**c) for c in data] if isinstance(data, list) else charts.Chart(**data)


def report_data(session: Any, run: RunPublic) -> ReportData:
    """Summary, charts and opening comparison of a run: computed once and stored when the run has
    finished (``app.services.run_views``), at most every couple of seconds while it runs."""
    def build() -> bytes:
        data = _build_report(session, run)
        return json.dumps({
            "summary": data.summary.model_dump(mode="json"),
            "charts": None if data.charts is None else {k: ([asdict(c) for c in v] if isinstance(v, list) else asdict(v))
                                                        for k, v in data.charts.items()},
            "comparison": None if data.comparison is None else data.comparison.model_dump(mode="json"),
        }, separators=(",", ":")).encode()

    record = run_service.get_record(session, run.id)
    raw = json.loads(run_views.get(session, record, "report", [run.spec_hash], build))
    return ReportData(RunSummary.model_validate(raw["summary"]),
                      None if raw["charts"] is None else {k: _chart(v) for k, v in raw["charts"].items()},
                      None if raw["comparison"] is None else PairedComparison.model_validate(raw["comparison"]))


def warm_report(session: Any, run_id: int) -> None:
    """Store a finished run's report data, so the report page's first view is a read."""
    report_data(session, run_service.get(session, run_id))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int, session: SessionDep, _: PageUser) -> HTMLResponse:
    return render_run(request, session, run_id)


def render_run(request: Request, session: Any, run_id: int, *, label_error: str | None = None) -> HTMLResponse:
    """The report page; ``label_error`` when the labels form was refused. A queued run on a service that
    executes nothing itself says whether any worker is alive to take it (their heartbeats)."""
    run = run_service.get(session, run_id)
    settings = request.app.state.settings
    executes = settings.execution != "none"
    workers = None
    if run.status == "queued" and not executes:
        from app.services.workers import live_workers

        workers = live_workers(session, timeout_s=settings.worker_timeout_s)
    data = report_data(session, run)
    return page(request, "run_report.html", status_code=422 if label_error else 200, nav="runs", run=run,
                label_error=label_error, executes_runs=executes, live_workers=workers,
                worker_timeout_s=settings.worker_timeout_s, summary=data.summary, charts=data.charts,
                comparison=data.comparison, outcomes=[o.value for o in Outcome],
                strategies=[s.key for s in run.spec.strategies], endpoints=[e["name"] for e in run.spec.endpoints])


# The self-contained report runs its own inline script and styles and may load nothing at all.
STANDALONE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
                  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@router.get("/runs/{run_id}/report.html", response_class=HTMLResponse)
def report_file(request: Request, run_id: int, session: SessionDep, _: PageUser,
                download: bool = Query(False, description="as an attachment")) -> HTMLResponse:
    """The run's report as one self-contained HTML file (the renderer ``ctxeval report --html`` uses):
    summary, recommendation, checks and charts with plotly.js inline; it opens offline, from a file."""
    from app.services.report_html import ReportInput, render_report_html

    run = run_service.get(session, run_id)
    rows = statistics.case_rows(session, run_id)
    summary = statistics.summary(session, run_id, rows=rows)
    title = f"Run #{run.id}" + (f" · {run.name}" if run.name else "")
    facts = [("suite", run.spec.suite_name or f"suite {run.suite_id}"),
             ("endpoints", ", ".join(f"{e['name']} ({e.get('model', '')})" for e in run.spec.endpoints)),
             ("strategies", ", ".join(s.key for s in run.spec.strategies)),
             ("scorers", ", ".join(run.spec.scorers)),
             ("spec", f"{run.spec_hash[:16]} · engine {run.spec.engine_version}"),
             ("created", run.created_at.strftime("%Y-%m-%d %H:%M UTC"))]
    if run.tags:
        facts.append(("tags", ", ".join(run.tags)))
    if run.notes:
        facts.append(("notes", run.notes))
    html = render_report_html(ReportInput(
        title=title, summary=summary, rows=rows, strategies=[s.key for s in run.spec.strategies],
        endpoints=[e["name"] for e in run.spec.endpoints], facts=facts, status=run.status, error=run.error,
        checks=run.check_results or [], recommendation=summary.recommendation))
    headers = {"Content-Security-Policy": STANDALONE_CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="ctxeval-run-{run.id}.html"'
    return HTMLResponse(html, headers=headers)


@router.get("/runs/{run_id}/compare", response_class=HTMLResponse)
def compare_page(request: Request, run_id: int, session: SessionDep, _: PageUser,
                 a: str = Query(...), b: str = Query(...), scorer: str | None = Query(None),
                 endpoint: str | None = Query(None)) -> HTMLResponse:
    run = run_service.get(session, run_id)
    comparison, error = _comparison(session, run_id, a, b, scorer or None, endpoint or None)
    disagreements = report.disagreement_rows(session, run_id, comparison) if comparison else []
    return page(request, "compare.html", nav="runs", run=run, comparison=comparison, error=error,
                disagreements=disagreements, a=a, b=b, scorer=scorer or next(iter(run.spec.scorers), None),
                endpoint=endpoint or "", strategies=[s.key for s in run.spec.strategies],
                endpoints=[e["name"] for e in run.spec.endpoints], status_code=422 if error else 200)


@router.get("/runs/{run_id}/cases", response_class=HTMLResponse)
def cases_page(request: Request, run_id: int, session: SessionDep, _: PageUser,
               strategy: str | None = Query(None), endpoint: str | None = Query(None),
               outcome: str | None = Query(None), offset: int = Query(0, ge=0)) -> HTMLResponse:
    run = run_service.get(session, run_id)
    outcome = outcome if outcome in {o.value for o in Outcome} else None
    cases = case_service.list_public(session, run_id=run_id, offset=offset, limit=CASES_PER_PAGE,
                                     strategy=strategy or None, endpoint=endpoint or None, outcome=outcome)
    return page(request, "cases.html", nav="runs", run=run, cases=cases.data, count=cases.count, offset=offset,
                limit=CASES_PER_PAGE, strategy=strategy or "", endpoint=endpoint or "", outcome=outcome or "",
                strategies=[s.key for s in run.spec.strategies], endpoints=[e["name"] for e in run.spec.endpoints],
                outcomes=[o.value for o in Outcome])


@router.get("/runs/{run_id}/cases/{case_id}")
def case_redirect(run_id: int, case_id: str, session: SessionDep, _: PageUser) -> RedirectResponse:
    """A case opens on its question's page, next to the other strategies' answers."""
    result = case_service.get_result(session, run_id=run_id, case_id=case_id)
    return RedirectResponse(f"/runs/{run_id}/questions/{result.question_id}#case-{case_id}", status_code=303)


@router.get("/runs/{run_id}/questions/{question_id:path}", response_class=HTMLResponse)
def question_page(request: Request, run_id: int, question_id: str, session: SessionDep,
                  _: PageUser) -> HTMLResponse:
    view = report.question_view(session, run_id, question_id)
    run = run_service.get(session, run_id)
    return page(request, "question.html", nav="runs", run=run, view=view, scorers=run.spec.scorers)
