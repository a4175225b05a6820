"""Pages: suites (list, upload, generate, inspect) and endpoints (list, add, probe). An endpoint's key
is write-only: the add form never renders one back, not even after an error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse

from app.api.deps import SessionDep
from app.errors import ServiceError
from app.services import endpoints as endpoint_service
from app.services import imports, suite_views
from app.services import runs as run_service
from app.services import suites as suite_service
from app.web.auth import PageUser
from app.web.forms import (
    ENDPOINT_FORM_FIELDS,
    endpoint_changes_from_form,
    endpoint_from_form,
    form_values,
    params_from_text,
    validation_message,
)
from app.web.pages_runs import redirect
from app.web.render import page
from evals import CtxevalError, ProbeResult, UserInputError, normalise_base_url

router = APIRouter(include_in_schema=False)


def _message(e: Exception) -> str:
    return validation_message(e) if isinstance(e, ValidationError) else getattr(e, "message", None) or str(e)


# --------------------------------------------------------------------------------------------- suites
def _suites_page(request: Request, session: Any, *, error: str | None = None, values: dict[str, Any] | None = None,
                 status_code: int = 200, field: str | None = None) -> HTMLResponse:
    suites, count = suite_service.list_public(session, offset=0, limit=500, name=None)
    return page(request, "suites.html", status_code=status_code, nav="suites", suites=suites, count=count,
                kinds=suite_views.generator_kinds(), error=error, values=values or {}, field=field)


@router.post("/suites/import", response_class=HTMLResponse)
async def import_suite(request: Request, session: SessionDep, _: PageUser) -> Any:
    """Documents + questions, or a LongBench-style file: the same importers as the API and the CLI."""
    form = await request.form()
    name = str(form.get("name", ""))
    values = {"import_name": name, "default_question": str(form.get("default_question", ""))}

    def upload(item: Any) -> tuple[str, bytes] | None:
        return (item.filename or "", item.file.read()) if getattr(item, "filename", None) else None

    longbench = upload(form.get("longbench"))
    try:
        if longbench is not None and (upload(form.get("questions")) or any(upload(d) for d in form.getlist("documents"))):
            raise UserInputError("upload either a LongBench file or questions with documents, not both",
                                 field="longbench")
        if longbench is not None:
            values["mode"] = "longbench"
            suite = imports.import_longbench_file(name=name, upload=longbench,
                                                  default_question=values["default_question"])
        else:
            docs = [u for u in (upload(d) for d in form.getlist("documents")) if u is not None]
            suite = imports.import_documents_and_questions(name=name, questions=upload(form.get("questions")),
                                                           documents=docs)
        stored = suite_service.store(session, suite)
    except (CtxevalError, ServiceError, ValidationError) as e:
        return _suites_page(request, session, error=_message(e), values=values, status_code=422,
                            field=getattr(e, "field", None))
    verb = "Imported" if stored.created else "Already stored:"
    return redirect(f"/suites/{stored.id}", f"{verb} suite {stored.name} v{stored.version}: "
                                           f"{stored.n_documents} documents, {stored.n_questions} questions.")


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


HAYSTACK_BYTES_PER_TOKEN = 16  # what a haystack upload is read up to: far more text than any tokenizer needs
HAYSTACK_UPLOAD_LIMIT = 256 * 1024 * 1024


def read_haystack_upload(upload: UploadFile, lengths: list[int]) -> str:
    """The start of an uploaded haystack, read in chunks only as far as the longest length can use."""
    limit = min(HAYSTACK_UPLOAD_LIMIT, (max(lengths) + 64) * HAYSTACK_BYTES_PER_TOKEN)
    data = bytearray()
    while len(data) < limit and (chunk := upload.file.read(min(1 << 20, limit - len(data)))):
        data += chunk
    for cut in range(4):  # a multi-byte character cut by the limit is dropped
        try:
            text = bytes(data[: len(data) - cut]).decode("utf-8")
            break
        except UnicodeDecodeError as e:
            if cut == 3 or e.start < len(data) - 4:
                raise UserInputError(f"the haystack file {upload.filename!r} is not UTF-8 text (byte {e.start})",
                                     field="haystack") from None
    if not text.split():
        raise UserInputError(f"the haystack file {upload.filename!r} has no words", field="haystack")
    return text


@router.post("/suites/generate", response_class=HTMLResponse)
def generate_suite(request: Request, session: SessionDep, _: PageUser, kind: str = Form(...),
                   lengths: str = Form(""), depths: str = Form(""), samples: str = Form(""), seed: str = Form(""),
                   params: str = Form(""), haystack: UploadFile | None = File(None)) -> Any:
    values = {"kind": kind, "lengths": lengths, "depths": depths, "samples": samples, "seed": seed,
              "params": params}
    try:
        chosen = suite_views.generator_params(lengths=lengths, depths=depths, samples=samples, seed=seed,
                                              extra=params_from_text(params))
        if haystack is not None and haystack.filename:
            chosen["haystack_text"] = read_haystack_upload(haystack, chosen.get("lengths") or [4096])
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


BROWSE_PER_PAGE = 50


@router.get("/suites/{suite_id}/browse", response_class=HTMLResponse)
def browse_suite(request: Request, suite_id: int, session: SessionDep, _: PageUser,
                 what: str = Query("questions"), search: str = Query("", max_length=200),
                 offset: int = Query(0, ge=0)) -> HTMLResponse:
    """Every question or document of a suite, 50 a page, with a search over ids, text and answers."""
    suite = suite_service.get(session, suite_id)
    what = "documents" if what == "documents" else "questions"
    if what == "documents":
        listed: Any = suite_service.documents(session, suite_id, offset=offset, limit=BROWSE_PER_PAGE, search=search)
    else:
        listed = suite_service.questions(session, suite_id, offset=offset, limit=BROWSE_PER_PAGE, search=search)
    return page(request, "suite_browse.html", nav="suites", suite=suite, what=what, search=search.strip(),
                items=listed.data, count=listed.count, offset=offset, limit=BROWSE_PER_PAGE)


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
    endpoint = endpoint_service.get(session, endpoint_id).model_dump(mode="json")
    saved = endpoint.get("probe") or {}
    if probe is None and probe_error is None:
        probe = saved.get("result")
    found = endpoint_service.probe_findings(ProbeResult.model_validate(saved["result"])) if saved else {}
    kept = saved.get("kept") or {}
    return page(request, "endpoint.html", nav="endpoints", endpoint=endpoint, probe=probe, probe_error=probe_error,
                unreachable=saved.get("unreachable"), probed_at=saved.get("probed_at"),
                applied=saved.get("applied") or {}, kept=kept, kept_found={k: found.get(k) for k in kept})


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


def _edit_page(request: Request, session: Any, endpoint_id: int, *, values: dict[str, Any] | None = None,
               error: str | None = None, field: str | None = None, status_code: int = 200) -> HTMLResponse:
    endpoint = endpoint_service.get(session, endpoint_id).model_dump(mode="json")
    if values is None:
        values = {k: ("" if endpoint.get(k) is None else endpoint[k]) for k in ENDPOINT_FORM_FIELDS}
    return page(request, "endpoint_edit.html", status_code=status_code, nav="endpoints", endpoint=endpoint,
                values=values, error=error, field=field)


@router.get("/endpoints/{endpoint_id}/edit", response_class=HTMLResponse)
def edit_endpoint_page(request: Request, endpoint_id: int, session: SessionDep, _: PageUser) -> HTMLResponse:
    return _edit_page(request, session, endpoint_id)


@router.post("/endpoints/{endpoint_id}/edit", response_class=HTMLResponse)
async def edit_endpoint(request: Request, endpoint_id: int, session: SessionDep, _: PageUser) -> Any:
    """The same change as ``PATCH /api/endpoints/{id}`` (``endpoint_service.update``): its rules apply."""
    form = await request.form()
    try:
        changes = endpoint_changes_from_form(form)
        current = endpoint_service.get(session, endpoint_id).model_dump(mode="json")
        for name in list(changes):  # send only what changed, so rules tied to a change (a new URL) see only those
            if name != "api_key" and _same(name, changes[name], current.get(name)):
                del changes[name]
        updated = endpoint_service.update(session, endpoint_id, changes)
    except (CtxevalError, ServiceError, ValidationError) as e:
        return _edit_page(request, session, endpoint_id, values=form_values(form), error=_message(e),
                          field=getattr(e, "field", None) or _validation_field(e), status_code=422)
    dispatcher = request.app.state.dispatcher
    if dispatcher is not None and "concurrency" in changes:  # queued cases follow the new limit
        dispatcher.register_endpoint_queue(updated.name, updated.concurrency)  # type: ignore[attr-defined]
    note = (" Its key was removed: a key is only sent to the base URL it was entered with; enter it again for "
            "the new URL." if getattr(updated, "api_key_cleared", False) else "")
    return redirect(f"/endpoints/{endpoint_id}", f"Endpoint {updated.name} saved.{note}")  # type: ignore[attr-defined]


def _same(name: str, typed: Any, stored: Any) -> bool:
    if name == "base_url":
        try:
            return normalise_base_url(str(typed)) == normalise_base_url(str(stored))
        except ValueError:
            return False
    return str(typed) == str(stored) if typed is not None and stored is not None else typed == stored


def _validation_field(e: Exception) -> str | None:
    if isinstance(e, ValidationError) and e.errors():
        loc = e.errors()[0].get("loc") or ()
        return str(loc[0]) if loc else None
    return None


@router.post("/endpoints/{endpoint_id}/delete")
def delete_endpoint(endpoint_id: int, session: SessionDep, _: PageUser) -> RedirectResponse:
    endpoint_service.delete(session, endpoint_id)
    return redirect("/endpoints", f"Endpoint {endpoint_id} deleted.")
