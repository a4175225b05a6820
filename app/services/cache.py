"""The engine's response cache kept in the app database, shared by every process of a deployment.

Reads are answered in groups by one ``SELECT … IN``: those of one turn of the event loop (the lanes of
a chunk starting at once), and while a read is in flight, every read asked meanwhile goes into the next
one (so at most one query per loop is in flight, and the lanes of a busy run share them). With ``deferred=True`` (how the executor uses it) a put is held in memory and
written by the case writer in the same transaction as the case it belongs to (:meth:`take_pending`),
instead of a transaction of its own; a held put already answers reads of this process.
With a ``reader`` (an executor's case writer process, :mod:`app.execution.writer`) the grouped reads
are answered there instead of on a thread of this process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from app import crud
from app.db import session_scope


class DbResponseCache:
    """``evals.runner.ResponseCache`` over the ``response_cache`` table (keyed by the exact request)."""

    def __init__(self, db: DbEngine, *, deferred: bool = False) -> None:
        self._db = db
        self._deferred = deferred
        # reads elsewhere (set to the case writer process's ``get_many``); None: on a thread here
        self.reader: Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]] | None = None
        self._held: dict[str, dict[str, Any]] = {}
        self._held_lock = threading.Lock()
        self._wanted: dict[str, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._flush_scheduled = False  # a read is scheduled or in flight: new gets join the next one

    # ------------------------------------------------------------------------------------- reads
    def _get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        with session_scope(self._db) as session:
            return crud.cache_get_many(session, keys=keys)

    async def get(self, key: str) -> dict[str, Any] | None:
        with self._held_lock:
            if key in self._held:
                return self._held[key]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._wanted.setdefault(key, []).append(future)
        if not self._flush_scheduled:  # every get of this loop iteration joins one query
            self._flush_scheduled = True
            loop.call_soon(lambda: asyncio.ensure_future(self._flush_gets()))
        return await future

    async def _flush_gets(self) -> None:
        try:
            while self._wanted:  # the gets asked while a read was in flight go into the next one
                wanted, self._wanted = self._wanted, {}
                await self._read(wanted)
        finally:
            self._flush_scheduled = False
            left, self._wanted = self._wanted, {}  # only when a read was interrupted (cancelled)
            for futures in left.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(RuntimeError("the response-cache read was interrupted"))

    async def _read(self, wanted: dict[str, list[asyncio.Future[dict[str, Any] | None]]]) -> None:
        try:
            keys = list(wanted)
            found = await (self.reader(keys) if self.reader is not None else asyncio.to_thread(self._get_many, keys))
        except BaseException as e:
            for futures in wanted.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(e if isinstance(e, Exception) else RuntimeError(str(e)))
            if not isinstance(e, Exception):
                raise
            return
        for key, futures in wanted.items():
            for f in futures:
                if not f.done():
                    f.set_result(found.get(key))

    # ------------------------------------------------------------------------------------- writes
    def _put(self, key: str, value: dict[str, Any]) -> None:
        with session_scope(self._db) as session:
            crud.cache_put_many(session, rows=[(key, value)])

    async def put(self, key: str, value: dict[str, Any]) -> None:
        if self._deferred:
            with self._held_lock:
                self._held.setdefault(key, value)
            return
        await asyncio.to_thread(self._put, key, value)

    def take_pending(self) -> list[tuple[str, dict[str, Any]]]:
        """Held puts, handed to the writer of the next transaction (and forgotten here)."""
        with self._held_lock:
            rows, self._held = list(self._held.items()), {}
        return rows

    def flush(self) -> None:
        """Write held puts now (at shutdown)."""
        rows = self.take_pending()
        if rows:
            with session_scope(self._db) as session:
                crud.cache_put_many(session, rows=rows)
