"""What ``/api/health`` reports: the database answers, who executes, which version."""

from __future__ import annotations

from sqlmodel import Session

from app import crud
from app.errors import UnavailableError
from app.schemas import HealthPublic, WorkerPublic
from app.services.workers import live_workers
from app.settings import Settings
from evals import ENGINE_VERSION


def health(session: Session, *, settings: Settings) -> HealthPublic:
    """The service's health; :class:`UnavailableError` (503) when the database does not answer."""
    try:
        crud.ping(session)
    except Exception as e:
        raise UnavailableError(f"database unreachable: {type(e).__name__}") from e
    workers = [WorkerPublic.model_validate(w, from_attributes=True)
               for w in live_workers(session, timeout_s=settings.worker_timeout_s)]
    return HealthPublic(status="ok", database=session.get_bind().dialect.name, execution=settings.execution,
                        auth_required=settings.auth_required, version=ENGINE_VERSION, workers=workers)
