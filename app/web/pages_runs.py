"""Pages: the runs list, the new-run form with its estimate, and the cancel / resume / re-run buttons."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse

from app.api.deps import DispatcherDep, SessionDep
from app.errors import ServiceError, UnavailableError
from app.models import RunStatus
from app.schemas import RunCreate, RunEstimate, RunUpdate
from app.services import endpoints as endpoint_service
from app.services import runs as run_service
from app.services import suites as suite_service
from app.web.auth import PageUser
from app.web.forms import form_values, run_from_form, strategy_forms, validation_message, values_from_spec
from app.web.render import page
from evals import CtxevalError

router = APIRouter(include_in_schema=False)

STATUSES = [s.value for s in RunStatus]


def redirect(url: str, notice: str | None = None) -> RedirectResponse:
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + quote(notice)
    return RedirectResponse(url, status_code=303)


@router.get("/")
def home(_: PageUser) -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, session: SessionDep, _: PageUser, status: str | None = Query(None),
              suite_id: str | None = Query(None), tag: str | None = Query(None, max_length=50),
              offset: int = Query(0, ge=0)) -> HTMLResponse:
    status = status if status in STATUSES else None
    suite = int(suite_id) if suite_id and suite_id.isdigit() else None
    tag = (tag or "").strip() or None
    runs = run_service.list_public(session, offset=offset, limit=50, status=status, suite_id=suite, tag=tag)
    suites, _count = suite_service.list_public(session, offset=0, limit=1000, name=None)
    return page(request, "runs.html", nav="runs", runs=runs.data, count=runs.count, offset=offset, limit=50,
                statuses=STATUSES, status=status, suite_id=suite, suites=suites, tag=tag)


# ----------------------------------------------------------------------------------------- new run
def _estimate(session: Any, body: RunCreate) -> RunEstimate:
    from app.services import estimate as estimate_service

    return estimate_service.estimate(session, body)


def _new_run_page(request: Request, session: Any, *, values: dict[str, Any], error: str | None = None,
                  field: str | None = None, estimate: RunEstimate | None = None,
                  status_code: int = 200, from_run: int | None = None,
                  from_notes: list[str] | None = None) -> HTMLResponse:
    suites, _ = suite_service.list_public(session, offset=0, limit=1000, name=None)
    endpoints = endpoint_service.list_public(session, offset=0, limit=1000)["data"]
    from evals import registry

    return page(request, "run_new.html", status_code=status_code, nav="new", suites=suites, endpoints=endpoints,
                strategies=strategy_forms(), scorers=registry.components("scorer"),
                presets=registry.components("preset"), values=values, error=error,
                field=field, estimate=estimate, estimate_error=None, from_run=from_run, from_notes=from_notes or [])


def _defaults(request: Request) -> dict[str, Any]:
    values: dict[str, Any] = {f"s.{sf.name}.on": "on" for sf in strategy_forms() if sf.preselected}
    suite_id = request.query_params.get("suite_id")
    if suite_id:
        values["suite_id"] = suite_id
    return values


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request, session: SessionDep, _: PageUser,
                 from_run: int | None = Query(None, alias="from", ge=1)) -> HTMLResponse:
    """The form; ``?from=ID`` fills it with run ID's spec ("Edit and re-run")."""
    if from_run is None:
        return _new_run_page(request, session, values=_defaults(request))
    from evals import registry

    run = run_service.get(session, from_run)
    endpoints = endpoint_service.list_public(session, offset=0, limit=1000)["data"]
    values, notes = values_from_spec(run.spec, suite_id=run.suite_id,
                                     endpoint_ids={e.name: e.id for e in endpoints},
                                     scorer_names={c.name for c in registry.components("scorer")})
    values["name"] = f"{run.name or 'run ' + str(run.id)} (edited)"
    return _new_run_page(request, session, values=values, from_run=run.id, from_notes=notes)


def _error_fields(e: Exception) -> tuple[str, str | None]:
    if isinstance(e, ValidationError):
        return validation_message(e), None
    if isinstance(e, ServiceError):
        return e.message, e.field
    field = getattr(e, "field", None)
    return str(e), field


@router.post("/runs/new", response_class=HTMLResponse)
async def create_run_page(request: Request, session: SessionDep, _: PageUser) -> Any:
    form: FormData = await request.form()
    values = form_values(form)
    try:
        body = run_from_form(form)
        if form.get("action") == "estimate":
            return _new_run_page(request, session, values=values, estimate=_estimate(session, body))
        dispatcher = request.app.state.dispatcher
        if dispatcher is None:
            raise UnavailableError("run execution is not configured on this service")
        run = run_service.create(session, dispatcher, body)
    except (CtxevalError, ServiceError, ValidationError) as e:
        message, field = _error_fields(e)
        return _new_run_page(request, session, values=values, error=message, field=field, status_code=422)
    return redirect(f"/runs/{run.id}", f"Run {run.id} started: {run.total_cases} cases.")


@router.post("/runs/new/estimate", response_class=HTMLResponse)
async def estimate_fragment(request: Request, session: SessionDep, _: PageUser) -> HTMLResponse:
    """The estimate box of the new-run form, refreshed as the form changes."""
    form = await request.form()
    try:
        estimate, error = _estimate(session, run_from_form(form)), None
    except (CtxevalError, ServiceError, ValidationError) as e:
        estimate, error = None, _error_fields(e)[0]
    return page(request, "_estimate.html", estimate=estimate, estimate_error=error)


# ------------------------------------------------------------------------------------------ actions
@router.post("/runs/{run_id}/cancel")
def cancel_run(run_id: int, session: SessionDep, dispatcher: DispatcherDep, _: PageUser) -> RedirectResponse:
    run_service.cancel(session, dispatcher, run_id)
    return redirect(f"/runs/{run_id}", f"Run {run_id} cancelled.")


@router.post("/runs/{run_id}/resume")
def resume_run(run_id: int, session: SessionDep, dispatcher: DispatcherDep, _: PageUser) -> RedirectResponse:
    run = run_service.resume(session, dispatcher, run_id)
    return redirect(f"/runs/{run_id}", f"Run {run_id} resumed (attempt {run.attempt}).")


@router.post("/runs/{run_id}/rerun")
def rerun_run(run_id: int, session: SessionDep, dispatcher: DispatcherDep, _: PageUser) -> RedirectResponse:
    run = run_service.rerun(session, dispatcher, run_id)
    return redirect(f"/runs/{run.id}", f"Run {run.id} started with the spec of run {run_id}.")


@router.post("/runs/{run_id}/labels", response_class=HTMLResponse)
async def run_labels(request: Request, run_id: int, session: SessionDep, _: PageUser) -> Any:
    """Rename, tag and annotate, through the same validation as ``PATCH /api/runs/{id}``."""
    form = await request.form()
    tags = [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()]
    try:
        body = RunUpdate(name=str(form.get("name", "")), tags=tags, notes=str(form.get("notes", "")))
    except ValidationError as e:
        from app.web.pages_report import render_run

        return render_run(request, session, run_id, label_error=validation_message(e))
    run_service.update_labels(session, run_id, body.model_dump())
    return redirect(f"/runs/{run_id}", f"Run {run_id} saved.")


@router.post("/runs/{run_id}/delete")
def delete_run(run_id: int, session: SessionDep, dispatcher: DispatcherDep, _: PageUser) -> RedirectResponse:
    run_service.delete(session, dispatcher, run_id)
    return redirect("/runs", f"Run {run_id} deleted.")
