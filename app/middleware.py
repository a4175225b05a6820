"""Request size limit, answered with the service's JSON error body.

A declared ``Content-Length`` over the limit is refused before the app runs; a body without one
(chunked) is counted as it streams in and refused once it passes the limit.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body


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
