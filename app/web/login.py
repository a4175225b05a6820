"""The login page: an API token (``ctxeval token create NAME``) exchanged for an HttpOnly cookie."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import SessionDep, SettingsDep
from app.services import tokens
from app.web.auth import COOKIE, COOKIE_MAX_AGE, safe_next
from app.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, next: str | None = Query(None)) -> Response:
    if not settings.auth_required:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", next=safe_next(next), error=None, bare=True)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, settings: SettingsDep, token: str = Form(""),
          next: str = Form("/runs")) -> Response:
    target = safe_next(next)
    if not settings.auth_required:
        return RedirectResponse(target, status_code=303)
    record = tokens.authenticate(session, token)
    if record is None:
        return page(request, "login.html", status_code=401, next=target, bare=True,
                    error="That token is not valid. Create one with: ctxeval token create NAME")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), max_age=COOKIE_MAX_AGE, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
