"""Sign-in for the pages: an API token entered once, kept in an HttpOnly cookie.

The cookie is also accepted by the JSON API (the pages' own calls to it): :class:`CookieBearer` turns it
into the ``Authorization: Bearer`` header the API checks, so there is one token check, the API's.
Cross-site state-changing requests are refused before this, with auth on or off, by
:class:`app.middleware.CrossSiteGuard` (it runs outside this middleware, so a cookie never stands in
for a bearer token there): a new form needs no CSRF token of its own.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import SessionDep, SettingsDep
from app.models import ApiToken
from app.services import tokens

COOKIE = "ctxeval_token"
COOKIE_MAX_AGE = 30 * 24 * 3600


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


class CookieBearer:
    """ASGI middleware: a request with the sign-in cookie and no ``Authorization`` header gets the
    cookie's token as its bearer token."""

    def __init__(self, app: ASGIApp, *, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
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
