"""Group commit of finished cases: one writer per executing process.

A lane hands its finished case to ``store`` and waits until the case is committed; every case that
finishes while a transaction is being written goes into the next one, together with the
response-cache entries held since and the prompt blobs not yet written by this process. So a case is
durable before its chunk goes on, at a few statements per transaction instead of several per case. A
transaction that fails on a deleted run is retried run by run, the deleted run's cases discarded;
one case the database refuses does not take the others with it (:class:`GroupCommit`).

Two writers share that logic. :class:`ProcessCaseWriter` (what an executor uses on a database file
or server) writes in a child process (:mod:`app.execution.writer_process`) that also answers the
response cache's reads: the database driver's work, which releases and retakes the interpreter lock
at every row, then never competes with the event loop that executes the cases. :class:`CaseWriter`
writes on a thread of this process (an in-memory database, or ``case_writer = "thread"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import IntegrityError, OperationalError

from app import crud
from app.db import session_scope
from app.services import cases as case_service
from app.services.cache import DbResponseCache
from evals import CaseResult

log = logging.getLogger("ctxeval.writer")
KNOWN_BLOBS = 4096  # (run, sha256) pairs this process has written, so a 4 MB text is sent once
RETRIES = 5
LINGER_S = 0.01  # a transaction waits up to this long for the cases other lanes are executing
LINGER_ITEMS = 32

Outcome = bool | Exception  # committed, its run is gone (False), or why it was not stored


@dataclass
class CaseRows:
    """One finished case as the database stores it (``services.cases.stored_fields``)."""

    run_id: int
    light: dict[str, Any]
    detail: dict[str, Any]
    blobs: dict[str, str] = field(default_factory=dict)


def case_rows(result: CaseResult, *, run_id: int, position: int, shared: tuple[str, ...] = ()) -> CaseRows:
    light, detail, blobs = case_service.stored_fields(result, run_id=run_id, position=position, shared=shared)
    return CaseRows(run_id, light, detail, blobs)


class GroupCommit:
    """Writes groups of finished cases, each group in as few transactions as the database allows."""

    def __init__(self, db: DbEngine) -> None:
        self._db = db
        self._known: OrderedDict[tuple[int, str], None] = OrderedDict()
        self.transactions = 0

    def write(self, batch: Sequence[CaseRows], cache: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        """Store ``batch`` with the held cache entries; one outcome per case, in order."""
        out: list[Outcome] = [False] * len(batch)
        everything = list(range(len(batch)))
        try:
            self._commit(batch, everything, cache)
            return [True] * len(batch)
        except IntegrityError:  # a run deleted meanwhile: its cases go, the others are stored
            for run_id in sorted({c.run_id for c in batch}):
                mine = [k for k in everything if batch[k].run_id == run_id]
                try:
                    self._commit(batch, mine, cache)
                    cache = []
                    for k in mine:
                        out[k] = True
                except IntegrityError:
                    pass  # False: the run is gone
                except Exception as e:
                    for k in mine:
                        out[k] = e
            return out
        except Exception as e:
            if len(batch) == 1:
                return [e]
        for k in everything:  # one case the database refuses must not take the others with it
            try:
                self._commit(batch, [k], cache)
                cache = []
                out[k] = True
            except IntegrityError:
                out[k] = False
            except Exception as e1:
                out[k] = e1
        return out

    def _commit(self, batch: Sequence[CaseRows], which: list[int], cache: list[tuple[str, dict[str, Any]]]) -> None:
        items = [batch[k] for k in which]
        blobs: list[dict[str, Any]] = []
        for i in items:
            for digest, text in i.blobs.items():
                if (i.run_id, digest) not in self._known:
                    blobs.append({"run_id": i.run_id, "sha256": digest, "text": text})
        blobs = list({(b["run_id"], b["sha256"]): b for b in blobs}.values())
        rows = list({(i.run_id, i.light["case_id"]): (i.light, i.detail) for i in items}.values())
        for attempt in range(RETRIES):
            try:
                with session_scope(self._db) as session:
                    crud.write_cases(session, rows=rows, blobs=blobs, cache=cache)
                break
            except OperationalError as e:  # a locked SQLite file or a dropped connection: try again
                if attempt == RETRIES - 1:
                    raise
                log.warning("writing %d case(s) failed, retrying: %s", len(rows), e)
                time.sleep(0.2 * 2 ** attempt)
        self.transactions += 1
        for b in blobs:
            self._known[(b["run_id"], b["sha256"])] = None
            while len(self._known) > KNOWN_BLOBS:
                self._known.popitem(last=False)


@dataclass
class _Item:
    run_id: int
    position: int
    result: CaseResult
    shared: tuple[str, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


class CaseWriter:
    """The group-commit writer on a thread of this process."""

    def __init__(self, db: DbEngine, cache: DbResponseCache | None = None) -> None:
        self._group = GroupCommit(db)
        self._cache = cache
        self._items: list[_Item] = []
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="ctxeval-case-writer", daemon=True)
        self._thread.start()
        self.executing = 0  # cases being executed in this process right now (see ``executing_case``)

    @property
    def transactions(self) -> int:
        return self._group.transactions

    @contextlib.contextmanager
    def executing_case(self) -> Any:
        """Around a case's execution: a transaction waits a little for cases still executing."""
        with self._cv:
            self.executing += 1
        try:
            yield
        finally:
            with self._cv:
                self.executing -= 1

    async def store(self, run_id: int, position: int, result: CaseResult, shared: tuple[str, ...] = ()) -> bool:
        """True once committed; False when the run is gone (deleted meanwhile). The rows are built
        on the writer's thread (``shared``: see ``prompt_store.split_messages``)."""
        loop = asyncio.get_running_loop()
        item = _Item(run_id, position, result, shared, loop, loop.create_future())
        with self._cv:
            if self._closed:
                raise RuntimeError("the case writer is closed")
            self._items.append(item)
            self._cv.notify_all()
        return await asyncio.shield(item.future)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=30)
        if self._cache is not None:
            try:
                self._cache.flush()
            except Exception as e:  # the cache is an optimisation; losing held entries costs a re-ask
                log.warning("response cache not flushed: %s", e)

    # ----------------------------------------------------------------------------------- thread
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._items and not self._closed:
                    self._cv.wait()
                if not self._items:
                    return
                deadline = time.monotonic() + LINGER_S
                while (len(self._items) < min(self.executing, LINGER_ITEMS) and not self._closed
                       and (left := deadline - time.monotonic()) > 0):
                    self._cv.wait(left)  # cases other lanes are about to finish join this transaction
                batch, self._items = self._items, []
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        ready, rows = [], []
        for i in batch:
            try:
                rows.append(case_rows(i.result, run_id=i.run_id, position=i.position, shared=i.shared))
                ready.append(i)
            except Exception as e:
                log_failures([e])
                settle([(i.loop, i.future)], [e])
        if not ready:
            return
        cache = self._cache.take_pending() if self._cache is not None else []
        outcomes = self._group.write(rows, cache)
        log_failures(outcomes)
        settle([(i.loop, i.future) for i in ready], outcomes)


def log_failures(outcomes: Sequence[Any]) -> None:
    errors = [o for o in outcomes if isinstance(o, Exception)]
    if errors:
        log.error("could not store %d case(s): %s", len(errors), errors[0])


def settle(waiters: Sequence[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]],
           outcomes: Sequence[Any]) -> None:
    """Settle futures from another thread with their outcomes (an exception is raised in the waiter):
    one wake-up of each waiting loop for the whole group, not one per case (each wake-up is a write
    to the loop's socket and a turn of the loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for (loop, future), outcome in zip(waiters, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these cases any more
            loop.call_soon_threadsafe(_set, pairs)


def _set(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in pairs:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
