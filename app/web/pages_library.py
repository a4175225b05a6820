"""Pages: suites (list, upload, generate, inspect) and endpoints (list, add, probe). An endpoint's key
is write-only: the add form never renders one back, not even after an error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse

from app.api.deps import SessionDep
from app.errors import ServiceError
from app.services import endpoints as endpoint_service
from app.services import runs as run_service
from app.services import suite_views
from app.services import suites as suite_service
from app.web.auth import PageUser
from app.web.forms import (
    ENDPOINT_FORM_FIELDS,
    endpoint_from_form,
    form_values,
    params_from_text,
    validation_message,
)
from app.web.pages_runs import redirect
from app.web.render import page
from evals import CtxevalError

router = APIRouter(include_in_schema=False)


def _message(e: Exception) -> str:
    return validation_message(e) if isinstance(e, ValidationError) else getattr(e, "message", None) or str(e)


# --------------------------------------------------------------------------------------------- suites
def _suites_page(request: Request, session: Any, *, error: str | None = None, values: dict[str, Any] | None = None,
                 status_code: int = 200) -> HTMLResponse:
    suites, count = suite_service.list_public(session, offset=0, limit=500, name=None)
    return page(request, "suites.html", status_code=status_code, nav="suites", suites=suites, count=count,
                kinds=suite_views.generator_kinds(), error=error, values=values or {})


@router.get("/suites", response_class=HTMLResponse)
def suites_page(request: Request, session: SessionDep, _: PageUser) -> HTMLResponse:
    return _suites_page(request, session)


@router.post("/suites/upload", response_class=HTMLResponse)
def upload_suite(request: Request, session: SessionDep, _: PageUser,
                 file: UploadFile = File(...)) -> Any:
    try:
        suite = suite_service.parse_upload(file.filename or "suite", file.file.read())
        stored = suite_service.store(session, suite)
    except (CtxevalError, ServiceError, ValidationError) as e:
        return _suites_page(request, session, error=_message(e), status_code=422)
    verb = "Stored" if stored.created else "Already stored:"
    return redirect(f"/suites/{stored.id}", f"{verb} suite {stored.name} v{stored.version}.")


@router.post("/suites/generate", response_class=HTMLResponse)
def generate_suite(request: Request, session: SessionDep, _: PageUser, kind: str = Form(...),
                   lengths: str = Form(""), depths: str = Form(""), samples: str = Form(""), seed: str = Form(""),
                   params: str = Form("")) -> Any:
    values = {"kind": kind, "lengths": lengths, "depths": depths, "samples": samples, "seed": seed,
              "params": params}
    try:
        chosen = suite_views.generator_params(lengths=lengths, depths=depths, samples=samples, seed=seed,
                                              extra=params_from_text(params))
        stored = suite_views.generate(session, kind, chosen)
    except (CtxevalError, ServiceError, ValidationError) as e:
        return _suites_page(request, session, error=_message(e), values=values, status_code=422)
    verb = "Generated" if stored.created else "Already stored:"
    return redirect(f"/suites/{stored.id}", f"{verb} suite {stored.name} v{stored.version}.")


@router.get("/suites/{suite_id}", response_class=HTMLResponse)
def suite_page(request: Request, suite_id: int, session: SessionDep, _: PageUser) -> HTMLResponse:
    suite = suite_service.get(session, suite_id)
    runs = run_service.list_public(session, offset=0, limit=20, status=None, suite_id=suite_id)
    return page(request, "suite.html", nav="suites", suite=suite, info=suite_views.inspect(session, suite_id),
                runs=runs.data)


@router.post("/suites/{suite_id}/delete")
def delete_suite(suite_id: int, session: SessionDep, _: PageUser) -> RedirectResponse:
    suite_service.delete(session, suite_id)
    return redirect("/suites", f"Suite {suite_id} deleted.")


# ------------------------------------------------------------------------------------------ endpoints
def _endpoints_page(request: Request, session: Any, *, error: str | None = None, field: str | None = None,
                    values: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    listed = endpoint_service.list_public(session, offset=0, limit=500)
    return page(request, "endpoints.html", status_code=status_code, nav="endpoints", endpoints=listed["data"],
                error=error, field=field, values=values or {}, fields=ENDPOINT_FORM_FIELDS)


@router.get("/endpoints", response_class=HTMLResponse)
def endpoints_page(request: Request, session: SessionDep, _: PageUser) -> HTMLResponse:
    return _endpoints_page(request, session)


@router.post("/endpoints", response_class=HTMLResponse)
async def add_endpoint(request: Request, session: SessionDep, _: PageUser) -> Any:
    form = await request.form()
    try:
        created = endpoint_service.create(session, endpoint_from_form(form))
    except (CtxevalError, ServiceError, ValidationError) as e:
        field = getattr(e, "field", None)
        return _endpoints_page(request, session, error=_message(e), field=field, values=form_values(form),
                               status_code=422)
    return redirect(f"/endpoints/{created.id}", f"Endpoint {created.name} added.")  # type: ignore[attr-defined]


def _endpoint_page(request: Request, session: Any, endpoint_id: int, *, probe: dict[str, Any] | None = None,
                   probe_error: str | None = None) -> HTMLResponse:
    endpoint = endpoint_service.get(session, endpoint_id)
    return page(request, "endpoint.html", nav="endpoints", endpoint=endpoint.model_dump(mode="json"),
                probe=probe, probe_error=probe_error)


@router.get("/endpoints/{endpoint_id}", response_class=HTMLResponse)
def endpoint_page(request: Request, endpoint_id: int, session: SessionDep, _: PageUser) -> HTMLResponse:
    return _endpoint_page(request, session, endpoint_id)


@router.post("/endpoints/{endpoint_id}/probe", response_class=HTMLResponse)
async def probe_endpoint(request: Request, endpoint_id: int, session: SessionDep, _: PageUser) -> HTMLResponse:
    endpoint_service.get_record(session, endpoint_id)
    try:
        result = await endpoint_service.probe(session, endpoint_id)
        report, error = result.model_dump(mode="json"), None
    except (CtxevalError, ServiceError) as e:
        report, error = None, _message(e)
    return _endpoint_page(request, session, endpoint_id, probe=report, probe_error=error)


@router.post("/endpoints/{endpoint_id}/delete")
def delete_endpoint(endpoint_id: int, session: SessionDep, _: PageUser) -> RedirectResponse:
    endpoint_service.delete(session, endpoint_id)
    return redirect("/endpoints", f"Endpoint {endpoint_id} deleted.")
