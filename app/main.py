"""Builds the FastAPI application. Nothing here runs at import time but the app's construction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from app import log_scrub
from app.api import docs as api_docs
from app.api import openapi as api_openapi
from app.api.main import api_router, public_router
from app.db import make_engine
from app.errors import install_error_handlers
from app.execution.dispatch import Dispatcher
from app.middleware import BodySizeLimit, CrossSiteGuard, HostCheck, JsonBodyLimits
from app.settings import Settings
from app.web import install as install_dashboard
from evals import ENGINE_VERSION

DESCRIPTION = """
Measure long-context stuffing against retrieval on any OpenAI-compatible endpoint.

Store **endpoints** and **suites**, create a **run** from a matrix (suite × endpoints × strategies ×
scorers), follow its progress, then read its **cases**, summary, paired comparisons and exports.
Every error body is `{"error": {"message", "field", "line"?}}`.
"""

TAGS = [
    {"name": "health", "description": "Liveness; never needs a token."},
    {"name": "endpoints", "description": "OpenAI-compatible servers. Keys are write-only."},
    {"name": "suites", "description": "Documents and questions; immutable versions by content hash."},
    {"name": "runs", "description": "Matrices executed durably in the background."},
    {"name": "cases", "description": "One question × endpoint × strategy, scored."},
    {"name": "statistics", "description": "Summaries and paired comparisons computed from stored cases."},
]


def create_app(settings: Settings | None = None, *, db: Engine | None = None) -> FastAPI:
    """The service. ``db`` lets a caller share an engine; otherwise one is made from the settings."""
    settings = settings or Settings()
    log_scrub.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = db or make_engine(settings.database_url)
        app.state.db = engine
        executing = settings.execution == "inprocess"
        if executing:
            from app.execution import workflows as execution

            await execution.start_executor(settings, db=engine)
        app.state.dispatcher = Dispatcher(settings.dbos_system_database_url,
                                          polling_interval_s=settings.queue_polling_interval_s,
                                          start_here=execution.start_run_here if executing else None,
                                          queues_ready=executing and execution.runtime().queues_registered)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.dispatcher.close)
            if executing:
                await execution.stop_executor()
            if db is None:
                engine.dispose()

    app = FastAPI(title="ctxeval", version=ENGINE_VERSION, description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # offline docs: app/api/docs.py
    app.state.settings = settings
    app.state.db = db
    app.state.dispatcher = None
    install_error_handlers(app)
    # middleware runs outermost last-added: Host, cross-site, (dashboard cookie), body size, JSON limits
    app.add_middleware(JsonBodyLimits)
    app.add_middleware(BodySizeLimit, max_body_size=settings.max_upload_bytes)
    app.include_router(public_router)
    app.include_router(api_router)
    api_openapi.install(app)
    api_docs.install(app)
    install_dashboard(app)
    app.add_middleware(CrossSiteGuard, trusted_origins=settings.trusted_origin_set)
    app.add_middleware(HostCheck, names=settings.host_names)
    return app
