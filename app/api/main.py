"""The ``/api`` routers: health is open, everything else needs a token when auth is required."""

from fastapi import APIRouter, Depends

from app.api.deps import require_token
from app.api.routes import cases, endpoints, health, runs, statistics, suite_tools, suites
from app.schemas import AUTH_RESPONSES

public_router = APIRouter(prefix="/api")
public_router.include_router(health.router)

api_router = APIRouter(prefix="/api", dependencies=[Depends(require_token)], responses=AUTH_RESPONSES)
api_router.include_router(endpoints.router)
api_router.include_router(suites.router)
api_router.include_router(suite_tools.router)
api_router.include_router(runs.router)
api_router.include_router(cases.router)
api_router.include_router(statistics.router)
api_router.include_router(statistics.compare_router)
