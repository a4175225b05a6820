"""Views of a run (its summary, its report page's data) kept as the JSON the service sends.

A finished run's stored cases no longer change, so each view is computed once, when the run finishes
(:func:`warm`) or at its first view, and stored in ``run_view``; every later view, in any process and
after restarts, is a one-row read. A view is stored with the run's *state* (attempt, status, finish
time): resuming a run changes its state (and deletes its views), so a stale view is never served.

A queued or running run changes with every stored case, so its views are computed, never stored, and
kept in memory: computed again once new cases are stored, but at most once per few times the last
computation took, one computation at a time however many viewers poll it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from app import crud
from app.models import ACTIVE_STATUSES, RunRecord, as_utc
from evals import ENGINE_VERSION

log = logging.getLogger("ctxeval.views")

VIEW_VERSION = 1  # bump when a stored view's shape or content changes: older stored views become stale
MEMORY_ITEMS = 32

_memory: OrderedDict[tuple[Any, ...], tuple[float, bytes]] = OrderedDict()
_lock = threading.Lock()
COST_FACTOR = 4.0  # a running run's view is computed again at most once per 4 × its computation time,
SLOW_S = 0.5  # once that computation takes this long (a small run's view is always fresh)


@dataclass
class _ActiveView:
    body: bytes
    count: int  # stored cases it was computed from
    at: float  # when its computation started (monotonic)
    cost_s: float


_active_views: dict[tuple[Any, ...], _ActiveView] = {}
_active_locks: dict[tuple[Any, ...], threading.Lock] = {}


def view_key(kind: str, params: Any) -> str:
    """What a view is, as a stored key: its kind, parameters and the code version that computed it."""
    raw = json.dumps([VIEW_VERSION, ENGINE_VERSION, kind, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def run_state(record: RunRecord) -> str:
    finished = as_utc(record.finished_at)
    return f"{record.attempt}|{record.status}|{finished.isoformat() if finished else ''}"


def _remember(key: tuple[Any, ...], body: bytes) -> None:
    with _lock:
        _memory[key] = (time.monotonic(), body)
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ITEMS:
            _memory.popitem(last=False)


def _recall(key: tuple[Any, ...]) -> bytes | None:
    with _lock:
        hit = _memory.get(key)
        if hit is None:
            return None
        _memory.move_to_end(key)
        return hit[1]


def forget_memory() -> None:
    """Empty this process's copies (the stored views stay)."""
    with _lock:
        _memory.clear()
        _active_views.clear()


def get(session: Session, record: RunRecord, kind: str, params: Any, build: Callable[[], bytes]) -> bytes:
    """The view ``kind`` with ``params`` of the run: from memory, else stored, else built (and, for a
    finished run, stored)."""
    key = view_key(kind, params)
    state = run_state(record)
    if record.status in ACTIVE_STATUSES:
        return _active(session, record, key, state, build)
    mkey = (record.id, record.created_at, key, state)
    hit = _recall(mkey)
    if hit is not None:
        return hit
    stored = crud.run_view_body(session, run_id=int(record.id or 0), key=key, state=state)
    body: bytes
    if stored is not None:
        body = stored.encode("utf-8")
    else:
        body = build()
        _store(session.get_bind(), int(record.id or 0), key, state, body)
    _remember(mkey, body)
    return body


def _active(session: Session, record: RunRecord, key: str, state: str, build: Callable[[], bytes]) -> bytes:
    """A running run's view: computed again when cases were stored since; but a slow one (``SLOW_S`` or
    more) at most once per ``COST_FACTOR`` × its computation time (a 10 s computation over 100k cases
    is served for up to 40 s while new cases arrive), so viewers cannot keep a core busy. One computation
    at a time per view: concurrent viewers wait for it and share it."""
    count = crud.count_cases(session, run_id=int(record.id or 0))
    akey = (record.id, record.created_at, key, state)
    with _lock:
        lock = _active_locks.setdefault(akey, threading.Lock())
    with lock:
        last = _active_views.get(akey)
        now = time.monotonic()
        if last is not None and (last.count == count or (
                last.cost_s >= SLOW_S and now - last.at < COST_FACTOR * last.cost_s)):
            return last.body
        start = time.monotonic()
        body = build()
        with _lock:
            _active_views[akey] = _ActiveView(body, count, start, time.monotonic() - start)
            while len(_active_views) > MEMORY_ITEMS:
                old = next(iter(_active_views))
                del _active_views[old]
                _active_locks.pop(old, None)
        return body


def stored_many(session: Session, records: list[RunRecord], kind: str, params: Any) -> dict[int, bytes]:
    """The stored, current view ``kind`` of each finished run among ``records`` that has one (one query)."""
    finished = {r.id: run_state(r) for r in records if r.id is not None and r.status not in ACTIVE_STATUSES}
    if not finished:
        return {}
    key = view_key(kind, params)
    rows = crud.run_view_bodies(session, run_ids=[i for i in finished if i is not None], key=key)
    return {run_id: body.encode("utf-8") for run_id, state, body in rows if finished.get(run_id) == state}


def put(session: Session, record: RunRecord, kind: str, params: Any, body: bytes) -> None:
    """Store the view of a finished run (nothing for an active one)."""
    if record.id is not None and record.status not in ACTIVE_STATUSES:
        _store(session.get_bind(), record.id, view_key(kind, params), run_state(record), body)


def _store(bind: Any, run_id: int, key: str, state: str, body: bytes) -> None:
    """Replace the stored view in a transaction of its own (a GET's session commits nothing)."""
    engine: Engine = bind.engine if hasattr(bind, "engine") else bind
    try:
        crud.replace_run_view(engine, run_id=run_id, key=key, state=state, body=body.decode("utf-8"))
    except IntegrityError:  # another process stored it (or the run was deleted) meanwhile
        log.debug("run %s: view %s stored elsewhere meanwhile", run_id, key[:12])
    except DBAPIError as e:  # storing is only a saving: the view was computed and is served anyway
        log.warning("run %s: could not store the view %s: %s", run_id, key[:12], e)


def invalidate(session: Session, run_id: int) -> None:
    """Delete the run's stored views (in the caller's transaction); resuming a run calls this."""
    crud.delete_run_views(session, run_id=run_id)
    with _lock:
        for k in [k for k in _memory if k[0] == run_id]:
            del _memory[k]
        for k in [k for k in _active_views if k[0] == run_id]:
            del _active_views[k]


def warm(engine: Engine, run_id: int) -> None:
    """Compute and store a finished run's default views (its summary and its report page's data), so
    their first view is a read. Called where a run finishes; a failure here costs only speed: it is logged."""
    from app.services import statistics
    from app.web import pages_report  # the report page's data is the dashboard's to build

    builders: list[Callable[[Session, int], None]] = [statistics.warm_summary, pages_report.warm_report]
    for build in builders:
        try:
            with Session(engine, expire_on_commit=False) as session:
                record = crud.get_run(session, run_id=run_id)
                if record is None or record.status in ACTIVE_STATUSES:
                    return
                build(session, run_id)
        except Exception:
            log.exception("run %s: could not store the view %s", run_id, getattr(build, "__name__", build))
