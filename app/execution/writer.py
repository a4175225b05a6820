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
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from app.execution.writer_process import LINGER_ITEMS, LINGER_S, CaseRows, GroupCommit, recv_frame, send_frame
from app.services import cases as case_service
from app.services.cache import DbResponseCache
from evals import CaseResult

log = logging.getLogger("ctxeval.writer")

def case_rows(result: CaseResult, *, run_id: int, position: int, shared: tuple[str, ...] = ()) -> CaseRows:
    light, detail, blobs = case_service.stored_fields(result, run_id=run_id, position=position, shared=shared)
    return CaseRows(run_id, light, detail, blobs)


@dataclass
class _Item:
    run_id: int
    position: int
    result: CaseResult
    shared: tuple[str, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


class _Executing:
    """How many cases this process is executing (``executing``, under ``_cv``): a transaction waits a
    little for them."""

    _cv: threading.Condition
    executing: int

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


class CaseWriter(_Executing):
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


class ProcessCaseWriter(_Executing):
    """The group-commit writer in a child process (:mod:`app.execution.writer_process`), which also
    answers the response cache's reads (:meth:`get_many`).

    A case's rows are built here, on the loop that executed it; a sender thread hands what has
    arrived to the child in one frame, a receiver thread settles the waiting futures, one wake-up per
    reply. If the child dies, the cases and reads it had are failed (a case not known to be stored
    is executed again by a resume; its row is an upsert) and the next call starts a new child."""

    def __init__(self, database_url: str, cache: DbResponseCache | None = None) -> None:
        self._url = database_url
        self._cache = cache
        self._cv = threading.Condition()
        self._cases: list[tuple[int, int, dict[str, Any], dict[str, Any], dict[str, str]]] = []
        self._gets: list[tuple[int, list[str]]] = []
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}
        self._token = 0
        self._closed = False
        self._child: _Child | None = None
        self.executing = 0
        self.transactions = 0  # committed by the child (every child this writer started)
        self.statements = 0  # executed by the child, for the benchmarks' statement counts
        with self._cv:
            self._start_child()

    # ------------------------------------------------------------------------------------- calls
    async def store(self, run_id: int, position: int, result: CaseResult, shared: tuple[str, ...] = ()) -> bool:
        """True once committed; False when the run is gone (deleted meanwhile)."""
        rows = case_rows(result, run_id=run_id, position=position, shared=shared)
        future = self._ask(lambda token: self._cases.append((token, rows.run_id, rows.light, rows.detail, rows.blobs)))
        return bool(await asyncio.shield(future))

    async def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The stored response-cache entries among ``keys``."""
        found: dict[str, dict[str, Any]] = await self._ask(lambda token: self._gets.append((token, keys)))
        return found

    def _ask(self, put: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the case writer is closed")
            if self._child is None or self._child.gone:
                self._start_child()
            self._token += 1
            self._waiting[self._token] = (loop, future)
            put(self._token)
            self._cv.notify_all()
        return future

    @property
    def child_pid(self) -> int | None:
        """The current child's process id (the benchmarks read its CPU time)."""
        return self._child.proc.pid if self._child is not None else None

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the child has opened the database (it takes about half a second to start)."""
        child = self._child
        return child is not None and child.ready.wait(timeout_s) and not child.gone

    def close(self) -> None:
        with self._cv:
            self._closed = True
            child = self._child
            self._cv.notify_all()
        if child is not None:
            child.join()

    # ------------------------------------------------------------------------------------- child
    def _start_child(self) -> None:  # with self._cv held
        self._child = _Child(self)
        self._child.start()

    def _take(self, child: _Child) -> dict[str, Any] | None:
        """The next frame for ``child`` (blocks until there is one); None once it has nothing more."""
        with self._cv:
            while not (self._cases or self._gets or self._closed) and self._child is child and not child.gone:
                self._cv.wait()
            if self._child is not child or child.gone:
                return None
            cases, self._cases = self._cases, []
            gets, self._gets = self._gets, []
            closing, executing = self._closed, self.executing
        # held cache entries go with cases (their transaction) or with the last frame
        cache = self._cache.take_pending() if self._cache is not None and (cases or closing) else []
        return {"cases": cases, "gets": gets, "cache": cache, "executing": executing, "close": closing}

    def _settle(self, message: dict[str, Any], child: _Child) -> None:
        waiters, outcomes = [], []
        with self._cv:
            for token, outcome in [*message.get("done", ()), *message.get("got", ())]:
                waiter = self._waiting.pop(token, None)
                if waiter is not None:
                    waiters.append(waiter)
                    outcomes.append(RuntimeError(outcome) if isinstance(outcome, str) else outcome)
            statements, transactions = message.get("statements", 0), message.get("transactions", 0)
            self.statements += statements - child.counted[0]
            self.transactions += transactions - child.counted[1]
            child.counted = (statements, transactions)
        settle(waiters, outcomes)

    def _lost(self, child: _Child) -> None:
        """The child exited: fail whatever it was asked and not yet answered."""
        with self._cv:
            child.gone = True
            waiters, self._waiting = list(self._waiting.values()), {}
            self._cases, self._gets = [], []
            closing = self._closed
            self._cv.notify_all()
        if not closing:
            log.error("the case writer process exited (%s); %d case(s) and read(s) it had are failed",
                      child.proc.poll(), len(waiters))
        if waiters:
            settle(waiters, [RuntimeError("the case writer process exited")] * len(waiters))


class _Child:
    """One writer process with its sender and receiver threads."""

    def __init__(self, writer: ProcessCaseWriter) -> None:
        self.writer = writer
        self.gone = False
        self.ready = threading.Event()
        self.counted = (0, 0)
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # where the app package is, for ``-m``
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "app.execution.writer_process", str(child.fileno())],
                                         pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, env=env)
        finally:
            child.close()
        self.sock = parent
        send_frame(parent, {"database_url": writer._url})  # a frame, not an argument: the URL may hold a password
        self.sender = threading.Thread(target=self._send, name="ctxeval-case-writer-send", daemon=True)
        self.receiver = threading.Thread(target=self._receive, name="ctxeval-case-writer-receive", daemon=True)

    def start(self) -> None:
        self.sender.start()
        self.receiver.start()

    def _send(self) -> None:
        while (message := self.writer._take(self)) is not None:
            try:
                send_frame(self.sock, message)
            except OSError:
                break
            if message["close"]:
                break

    def _receive(self) -> None:
        try:
            while (message := recv_frame(self.sock)) is not None:
                if message.get("ready"):
                    self.ready.set()
                    continue
                self.writer._settle(message, self)
        except Exception as e:
            if not isinstance(e, OSError):
                log.exception("the case writer's replies cannot be read")
        finally:
            with contextlib.suppress(OSError):  # the child sees its input end, commits what it has, exits
                self.sock.shutdown(socket.SHUT_RDWR)
            self.proc.wait()
            self.writer._lost(self)
            self.ready.set()  # nothing to wait for any more

    def join(self) -> None:
        self.sender.join(timeout=30)
        self.receiver.join(timeout=60)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
