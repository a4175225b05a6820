"""Which executors are alive: what the API and the pages show (``/api/health``, a run queued while
no worker is alive). The heartbeats themselves are written by ``app.execution.workers``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from app import crud
from app.models import as_utc, utcnow


@dataclass(frozen=True)
class WorkerInfo:
    executor_id: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime


def live_workers(session: Session, *, timeout_s: float, now: datetime | None = None) -> list[WorkerInfo]:
    """Executors whose last heartbeat is at most ``timeout_s`` old and that did not stop: who can
    execute queued work right now. (A run queued while this is empty waits for a worker.)"""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout_s)
    out = []
    for r in crud.list_executors(session):
        seen = as_utc(r.last_seen)
        if not r.stopped and seen is not None and seen >= cutoff:
            out.append(WorkerInfo(r.executor_id, r.host, r.pid, as_utc(r.started_at) or seen, seen))
    return out


