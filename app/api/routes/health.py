from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep, SettingsDep
from app.schemas import HealthPublic
from app.services import health as health_service

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, summary="Liveness and database reachability")
def health(session: SessionDep, settings: SettingsDep) -> HealthPublic:
    """Never needs a token; 503 when the database does not answer."""
    return health_service.health(session, settings=settings)
