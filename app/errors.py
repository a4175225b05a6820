"""The service's errors and their HTTP form.

The tree::

    ServiceError            a request the service cannot honour (400)
    ├── NotFoundError       an id that names nothing stored (404)
    ├── ConflictError       contradicts stored state, e.g. deleting a suite a run uses (409)
    ├── PayloadTooLarge     a request body over ``max_upload_bytes`` (413)
    └── UnavailableError    a part the request needs is not available here (503)

Service functions raise these (and the engine's :class:`evals.errors.UserInputError`); only
:func:`install_error_handlers` turns them into responses, always shaped
``{"error": {"message": ..., "field": ..., "line": ...}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from evals import UserInputError

log = logging.getLogger("ctxeval.service")


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class PayloadTooLarge(ServiceError):
    status_code = 413


class UnavailableError(ServiceError):
    status_code = 503


def printable(text: str | None) -> str | None:
    """``text`` safe to encode: a lone surrogate quoted from bad input shows as ``\\ud800``."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(message: str, *, field: str | None = None, line: int | None = None,
               source: str | None = None, **extra: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"message": printable(message), "field": printable(field)}
    if line is not None:
        err["line"] = line
    if source is not None:
        err["source"] = printable(source)
    err.update(extra)
    return {"error": err}


def field_path(loc: Sequence[Any], *, skip: tuple[str, ...] = ("body", "query", "path", "header")) -> str | None:
    """``("body", "strategies", 0, "name")`` → ``"strategies[0].name"``."""
    parts = list(loc)
    if parts and parts[0] in skip:
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or None


def _validation_response(errors: Sequence[Any]) -> JSONResponse:
    details = [
        {"message": printable(str(e.get("msg", "invalid value"))), "field": printable(field_path(e.get("loc", ())))}
        for e in errors
    ]
    first = details[0] if details else {"message": "invalid request", "field": None}
    field = first["field"]
    message = f"{field}: {first['message']}" if field else str(first["message"])
    return JSONResponse(status_code=422, content=error_body(message, field=field, errors=details))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=error_body(exc.message, field=exc.field))

    @app.exception_handler(UserInputError)
    async def _user_input(_: Request, exc: UserInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body(
            str(exc), field=exc.field, line=exc.line, source=exc.source or None))

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc.errors())

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> JSONResponse:
        return _validation_response(exc.errors(include_url=False))

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:  # e.g. a NUL byte PostgreSQL refuses
        return JSONResponse(status_code=422, content=error_body(
            f"a value is malformed or out of range for the database: {type(exc.orig).__name__}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=error_body(str(exc.detail)),
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content=error_body("internal error; see the service log"))
