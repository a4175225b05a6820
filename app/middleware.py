"""The service's ASGI middleware, outermost first (``app/main.py`` installs them in this order):

* :class:`HostCheck`: a ``Host`` header that names none of the service's hosts is refused (400), so a
  DNS-rebinding page cannot reach the API through a name it controls;
* :class:`CrossSiteGuard`: a state-changing request (anything but GET, HEAD, OPTIONS) from another
  site is refused (403) unless it carries a bearer token;
* :class:`BodySizeLimit`: a declared ``Content-Length`` over the limit is refused before the app runs;
  a body without one (chunked) is counted as it streams in and refused once it passes the limit;
* :class:`JsonBodyLimits`: a JSON body is parsed with :func:`evals.limits.loads_json` first, so a lone
  surrogate, an integer beyond 64 bits, NaN or nesting deeper than the limit is a 422 naming the field.

All refusals carry the service's JSON error body.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from evals import UserInputError, loads_json

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host_header: str) -> str:
    """``Host`` without its port, lower case (``[::1]:8000`` → ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    """Refuse a request whose ``Host`` is not one of ``names`` (None: any host)."""

    def __init__(self, app: ASGIApp, *, names: frozenset[str] | None) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.names is None:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if host_name(host) not in self.names:
            await JSONResponse(status_code=400, content=error_body(
                f"the Host header '{host[:100]}' is not one of this service's hosts; add it to "
                "CTXEVAL_ALLOWED_HOSTS if this name is meant to reach it", field="host"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def cross_site(headers: Headers, trusted_origins: frozenset[str] = frozenset()) -> bool:
    """True when a browser says the request comes from a page of another origin.

    ``Sec-Fetch-Site`` (set by the browser, never by a page) decides when present: only
    ``same-origin`` and ``none`` (the user's own navigation) pass. Otherwise ``Origin``, else
    ``Referer``, must name this host (or a trusted origin); ``Origin: null`` never passes. A request
    with none of these headers does not come from a web page (curl, scripts, the CLI) and passes."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        origin = headers.get("referer")
        if origin is None:
            return False
    if origin.strip().lower() == "null":
        return True
    parts = urlsplit(origin.strip())
    if f"{parts.scheme}://{parts.netloc}".lower() in trusted_origins:
        return False
    return parts.netloc.lower() != headers.get("host", "").lower()


class CrossSiteGuard:
    """Refuse a state-changing request from another site (CSRF), unless it carries a bearer token
    (which no browser adds on its own). Every form and script of the dashboard is same-origin, so
    this needs no per-form token."""

    def __init__(self, app: ASGIApp, *, trusted_origins: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.trusted_origins = trusted_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        if not bearer and cross_site(headers, self.trusted_origins):
            await JSONResponse(status_code=403, content=error_body(
                "cross-site request refused: send it from the dashboard itself or with an "
                "Authorization: Bearer header"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    def _message(self, size: int | None = None) -> str:
        if size is None:
            return f"the request body is over the limit of {self.max_body_size} bytes"
        return f"the request body has {size} bytes; the limit is {self.max_body_size}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            await JSONResponse(status_code=413, content=error_body(self._message(int(declared))))(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:  # reaches the app's handlers as a 413
                    raise HTTPException(status_code=413, detail=self._message())
            return message

        await self.app(scope, limited, send)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class JsonBodyLimits:
    """Check a JSON body against :mod:`evals.limits` before the app parses it (inside BodySizeLimit,
    so the body read here is already bounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS \
                or not _is_json(Headers(scope=scope).get("content-type", "")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            try:
                message = await receive()
            except HTTPException as e:  # BodySizeLimit: a chunked body over the limit
                await JSONResponse(status_code=e.status_code, content=error_body(str(e.detail)))(scope, receive, send)
                return
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as e:
                await JSONResponse(status_code=400, content=error_body(
                    f"the request body is not UTF-8 (byte offset {e.start})"))(scope, receive, send)
                return
            try:
                loads_json(text, source=None)
            except UserInputError as e:
                await JSONResponse(status_code=422, content=error_body(str(e), field=e.field))(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
                       send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
