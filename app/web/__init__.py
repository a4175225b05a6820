"""The dashboard: server-rendered pages on the same service functions as the JSON API.

:func:`install` adds the pages (mounted at ``/``), the static files, ``plotly.min.js`` from the
installed ``plotly`` package, the sign-in cookie middleware, and HTML error pages for every path
outside ``/api`` (the API keeps its JSON errors).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import plotly
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.errors import ServiceError, error_body
from app.web import login, pages_compare, pages_library, pages_report, pages_runs
from app.web.auth import CookieBearer, LoginRequired
from app.web.render import STATIC_DIR, error_page
from evals import UserInputError

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

Handler = Callable[[Request, Any], Awaitable[Response]]


def plotly_js() -> FileResponse:
    """plotly.js as shipped inside the installed ``plotly`` package: nothing comes from a CDN."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api") or path in ("/docs", "/redoc", "/openapi.json"))


def _status_and_message(exc: Exception) -> tuple[int, str, str | None]:
    if isinstance(exc, ServiceError):
        return exc.status_code, exc.message, exc.field
    if isinstance(exc, UserInputError):
        return 422, str(exc), exc.field
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ())[1:])
        return 422, f"{loc}: {first.get('msg', 'invalid value')}" if loc else "invalid request", loc or None
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail), None
    return 500, "internal error; see the service log", None


def _html_errors(app: FastAPI) -> None:
    """Pages answer errors with an HTML page; the API keeps the handlers the service installed."""

    async def fallback(_: Request, exc: Exception) -> Response:
        status, message, field = _status_and_message(exc)
        return JSONResponse(status_code=status, content=error_body(message, field=field))

    for cls in (ServiceError, UserInputError, RequestValidationError, StarletteHTTPException):
        original: Handler = app.exception_handlers.get(cls, fallback)  # type: ignore[assignment]

        async def handler(request: Request, exc: Exception, _original: Handler = original) -> Response:
            if not _is_page(request):
                return await _original(request, exc)
            status, message, field = _status_and_message(exc)
            return error_page(request, status, message, field=field)

        app.add_exception_handler(cls, handler)

    async def login_required(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.next_url, status_code=303)

    app.add_exception_handler(LoginRequired, login_required)


def install(app: FastAPI) -> None:
    """Add the dashboard to the service's app (after its API routers and error handlers)."""
    settings = app.state.settings
    app.add_api_route("/assets/plotly.min.js", plotly_js, methods=["GET"], include_in_schema=False)
    for module in (login, pages_runs, pages_report, pages_library, pages_compare):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(CookieBearer, enabled=settings.auth_required)
    _html_errors(app)
