"""Sign-in for the pages: an API token entered once, kept in an HttpOnly cookie.

The cookie is also accepted by the JSON API (the pages' own calls to it): :class:`CookieBearer` turns it
into the ``Authorization: Bearer`` header the API checks, so there is one token check, the API's. A
state-changing request carrying the cookie must come from the dashboard itself (same ``Origin``), so
another site cannot make a signed-in browser act. When auth is off none of this applies.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import SessionDep, SettingsDep
from app.errors import error_body
from app.models import ApiToken
from app.services import tokens

COOKIE = "ctxeval_token"
COOKIE_MAX_AGE = 30 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in user; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def safe_next(value: str | None) -> str:
    """Only a path on this site may follow a login (never another host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/runs"
    parts = urlsplit(value)
    return "/runs" if parts.scheme or parts.netloc else value


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


def page_user(request: Request, settings: SettingsDep, session: SessionDep) -> ApiToken | None:
    """The token behind the cookie; pages require one when the service requires auth."""
    if not settings.auth_required:
        return None
    token = request.cookies.get(COOKIE)
    record = tokens.authenticate(session, token, touch=False)
    if record is None:
        raise LoginRequired(login_url(request))
    return record


PageUser = Annotated[ApiToken | None, Depends(page_user)]


def same_origin(headers: Headers) -> bool:
    """False when the request names another site as its origin (``Origin``, else ``Referer``)."""
    host = headers.get("host", "")
    origin = headers.get("origin") or headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == host


class CookieBearer:
    """ASGI middleware: a request with the sign-in cookie and no ``Authorization`` header gets the
    cookie's token as its bearer token; a state-changing one from another origin is refused (403)."""

    def __init__(self, app: ASGIApp, *, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        unsafe = scope["method"] not in SAFE_METHODS and not same_origin(headers)
        if unsafe and (COOKIE in headers.get("cookie", "") or not scope["path"].startswith("/api")):
            await JSONResponse(status_code=403, content=error_body(
                "cross-site request refused: send it from the dashboard or with an Authorization header"))(
                scope, receive, send)
            return
        if self.enabled and "authorization" not in headers:
            token = _cookie(headers)
            if token:
                scope = dict(scope)
                scope["headers"] = [*scope["headers"], (b"authorization", f"Bearer {token}".encode("latin-1"))]
        await self.app(scope, receive, send)


def _cookie(headers: Headers) -> str | None:
    from http.cookies import SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:
        return None
    morsel = jar.get(COOKIE)
    if morsel is None or not morsel.value.isascii():
        return None
    return morsel.value
