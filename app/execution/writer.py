"""Group commit of finished cases: one writer thread per executing process.

A lane hands its finished case to :meth:`CaseWriter.store` and waits until the case is committed;
every case that finishes while a transaction is being written goes into the next one, together with
the response-cache entries held since and the prompt blobs not yet written by this process. So a
case is durable before its chunk goes on, at a few statements per transaction instead of several per
case. A transaction that fails on a deleted run is retried run by run, the deleted run's cases
discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
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


@dataclass
class _Item:
    run_id: int
    position: int
    result: CaseResult
    shared: tuple[str, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]
    light: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)


class CaseWriter:
    def __init__(self, db: DbEngine, cache: DbResponseCache | None = None) -> None:
        self._db = db
        self._cache = cache
        self._items: list[_Item] = []
        self._cv = threading.Condition()
        self._closed = False
        self._known: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._thread = threading.Thread(target=self._loop, name="ctxeval-case-writer", daemon=True)
        self._thread.start()
        self.transactions = 0
        self.executing = 0  # cases being executed in this process right now (see ``executing_case``)

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
        ready = []
        for i in batch:
            try:
                i.light, i.detail, i.blobs = case_service.stored_fields(i.result, run_id=i.run_id,
                                                                        position=i.position, shared=i.shared)
                ready.append(i)
            except Exception as e:
                self._fail([i], e)
        batch = ready
        if not batch:
            return
        cache = self._cache.take_pending() if self._cache is not None else []
        try:
            self._commit(batch, cache)
            self._resolve(batch, True)
        except IntegrityError:
            for run_id in sorted({i.run_id for i in batch}):
                items = [i for i in batch if i.run_id == run_id]
                try:
                    self._commit(items, cache)
                    cache = []
                    self._resolve(items, True)
                except IntegrityError:
                    self._resolve(items, False)
                except Exception as e:
                    self._fail(items, e)
        except Exception as e:
            if len(batch) == 1:
                self._fail(batch, e)
                return
            for item in batch:  # one case the database refuses must not take the others with it
                try:
                    self._commit([item], cache)
                    cache = []
                    self._resolve([item], True)
                except IntegrityError:
                    self._resolve([item], False)
                except Exception as e1:
                    self._fail([item], e1)

    def _commit(self, items: list[_Item], cache: list[tuple[str, dict[str, Any]]]) -> None:
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

    @staticmethod
    def _resolve(items: list[_Item], value: bool) -> None:
        _call(items, value, None)

    @staticmethod
    def _fail(items: list[_Item], error: Exception) -> None:
        log.error("could not store %d case(s): %s", len(items), error)
        _call(items, None, error)


def _call(items: list[_Item], value: bool | None, error: Exception | None) -> None:
    """Settle the items' futures: one wake-up of each waiting loop for the whole transaction, not one
    per case (each wake-up is a write to the loop's socket and a turn of the loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
    for i in items:
        by_loop.setdefault(i.loop, []).append(i.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these cases any more
            loop.call_soon_threadsafe(_set, futures, value, error)


def _set(futures: list[asyncio.Future[bool]], value: bool | None, error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(bool(value))
