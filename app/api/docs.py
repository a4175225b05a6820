"""Interactive API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) that work with no internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, a blank page on an offline cluster. Here the
JavaScript and CSS come from the installed ``fastapi-offline`` package (its ``static/`` folder holds
``swagger-ui-bundle.js``, ``swagger-ui.css`` and ``redoc.standalone.js``), served under
``/assets/api-docs/``; the favicon is the dashboard's, Google fonts are off, Swagger UI's online
validator badge is disabled and ReDoc's footer logo (its one remote image) points at the favicon, so
opening the docs sends no request beyond this service.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

ASSETS_URL = "/assets/api-docs"
FAVICON_URL = "/static/favicon.svg"
# the validator badge would send the schema's URL to validator.swagger.io
SWAGGER_PARAMETERS = {"validatorUrl": None, "displayRequestDuration": True, "tryItOutEnabled": False}


def assets_dir() -> Path:
    """The folder of the installed package that ships Swagger UI's and ReDoc's files."""
    folder = Path(str(files("fastapi_offline"))) / "static"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        if not (folder / name).is_file():
            raise RuntimeError(f"the fastapi-offline package lacks {name}; reinstall ctxeval's dependencies")
    return folder


# Remote assets the ReDoc bundle would load from Redocly's servers (today one: the footer's "API docs by
# Redocly" logo); any such URL is pointed at this service's favicon so the page loads nothing remote.
REDOC_REMOTE_ASSET = re.compile(r"https?://[A-Za-z0-9.-]*redoc\.ly/[^\"'\s)`]*")


@lru_cache(maxsize=1)
def redoc_js() -> bytes:
    """ReDoc's bundle with its remote assets (the footer logo) pointed at this service's favicon."""
    text = (assets_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return REDOC_REMOTE_ASSET.sub(FAVICON_URL, text).encode("utf-8")


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` from the packaged assets. The app must be
    created with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not registered."""

    async def redoc_bundle() -> Response:
        return Response(redoc_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route(f"{ASSETS_URL}/redoc.standalone.js", redoc_bundle, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="api-docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_url = "/docs/oauth2-redirect"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{openapi_url}", title=f"{app.title} API",
                                   oauth2_redirect_url=f"{root}{oauth2_url}",
                                   swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{FAVICON_URL}",
                                   swagger_ui_parameters=SWAGGER_PARAMETERS)

    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{openapi_url}", title=f"{app.title} API (ReDoc)",
                              redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{FAVICON_URL}", with_google_fonts=False)

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(oauth2_url, swagger_redirect, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
