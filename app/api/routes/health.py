from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from app.api.deps import SessionDep, SettingsDep
from app.errors import UnavailableError
from app.schemas import HealthPublic, WorkerPublic
from app.services.workers import live_workers
from evals import ENGINE_VERSION

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, summary="Liveness and database reachability")
def health(session: SessionDep, settings: SettingsDep) -> HealthPublic:
    """Never needs a token; 503 when the database does not answer."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as e:
        raise UnavailableError(f"database unreachable: {type(e).__name__}") from e
    workers = [WorkerPublic.model_validate(w, from_attributes=True)
               for w in live_workers(session, timeout_s=settings.worker_timeout_s)]
    return HealthPublic(status="ok", database=session.get_bind().dialect.name, execution=settings.execution,
                        auth_required=settings.auth_required, version=ENGINE_VERSION, workers=workers)
