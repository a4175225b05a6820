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
import select
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

from app.execution.writer_process import (
    LINGER_ITEMS,
    LINGER_S,
    CaseRows,
    Frames,
    GroupCommit,
    encode_frame,
    send_frame,
)
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

    Everything on this side happens on the event loop that executes the cases, with no thread of its
    own: a case's rows are built there; what the lanes hand over during one turn of the loop goes to
    the child in one frame, written to a non-blocking socket; replies are read when the socket is
    readable and settle the waiting futures directly. (A thread would take the interpreter lock from
    the loop at every case.) If the child dies, the cases and reads it had are failed (a case not known
    to be stored is executed again by a resume; its row is an upsert) and the next call starts a new
    child. The socket is watched by the loop of the latest call; called from another loop later (a new
    ``asyncio.run``), the writer moves there."""

    def __init__(self, database_url: str, cache: DbResponseCache | None = None) -> None:
        self._url = database_url
        self._cache = cache
        self._cv = threading.Condition()  # for ``executing`` (``_Executing``)
        self._cases: list[tuple[int, int, dict[str, Any], dict[str, Any], dict[str, str]]] = []
        self._gets: list[tuple[int, list[str]]] = []
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._token = 0
        self._closed = False
        self._flush_at: asyncio.Handle | None = None
        self.executing = 0
        self.transactions = 0  # committed by the child (every child this writer started)
        self.statements = 0  # executed by the child, for the benchmarks' statement counts
        self._child: _Child | None = _Child(self._url)

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
        if self._closed:
            raise RuntimeError("the case writer is closed")
        loop = asyncio.get_running_loop()
        child = self._child
        if child is not None and child.loop is not loop and not child.gone and child.proc.poll() is not None:
            self._lost(child)  # it died while no loop watched it (a watched one's socket says so)
        if child is None or child.gone:
            child = self._child = _Child(self._url)
        self._bind(child, loop)
        future: asyncio.Future[Any] = loop.create_future()
        self._token += 1
        self._waiting[self._token] = future
        put(self._token)
        if self._flush_at is None:  # what the lanes hand over in this turn of the loop goes in one frame
            self._flush_at = loop.call_soon(self._flush)
        return future

    @property
    def child_pid(self) -> int | None:
        """The current child's process id (the benchmarks read its CPU time)."""
        return self._child.proc.pid if self._child is not None else None

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the child has opened the database (it takes about half a second to start). Called
        before any loop watches the socket (blocking; from a thread in an async caller)."""
        child = self._child
        if child is None or child.loop is not None:
            return child is not None and child.ready and not child.gone
        deadline = time.monotonic() + timeout_s
        while not child.ready and not child.gone and (left := deadline - time.monotonic()) > 0:
            if select.select([child.sock], [], [], left)[0]:
                self._read(child)
        return child.ready and not child.gone

    def close(self) -> None:
        """Send what is left with ``close``, wait for the child to commit it and exit (blocking)."""
        if self._closed:
            return
        self._closed = True
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        child = self._child
        if child is None or child.gone:
            return
        self._unbind(child)
        try:
            child.sock.setblocking(True)
            child.sock.sendall(bytes(child.out) + encode_frame(self._message(close=True)))
            child.out.clear()
            child.sock.shutdown(socket.SHUT_WR)
            while not child.gone:  # its last replies, then the end of the socket as it exits
                if not select.select([child.sock], [], [], 60)[0]:
                    break
                self._read(child)
        except OSError:
            pass
        if child.proc.poll() is None:
            try:
                child.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        if not child.gone:
            self._lost(child)
        child.sock.close()

    # ----------------------------------------------------------------------------- the socket
    def _message(self, *, close: bool = False) -> dict[str, Any]:
        cases, self._cases = self._cases, []
        gets, self._gets = self._gets, []
        # held cache entries go with cases (their transaction) or with the last frame
        cache = self._cache.take_pending() if self._cache is not None and (cases or close) else []
        return {"cases": cases, "gets": gets, "cache": cache, "executing": self.executing, "close": close}

    def _flush(self) -> None:
        self._flush_at = None
        child = self._child
        if child is None or child.gone or not (self._cases or self._gets):
            return
        child.out += encode_frame(self._message())
        self._write(child)

    def _write(self, child: _Child) -> None:
        while child.out:
            try:
                sent = child.sock.send(child.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._lost(child)
                return
            del child.out[:sent]
        if child.loop is not None and bool(child.out) != child.writing:
            if child.out:
                child.loop.add_writer(child.sock, self._write, child)
            else:
                child.loop.remove_writer(child.sock)
            child.writing = bool(child.out)

    def _read(self, child: _Child) -> None:
        for message in child.frames.read():
            if message.get("ready"):
                child.ready = True
            else:
                self._settle(message, child)
        if child.frames.closed:
            self._lost(child)

    def _bind(self, child: _Child, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the child's socket on ``loop`` (moving it from an earlier loop)."""
        if child.loop is loop:
            return
        self._unbind(child)
        loop.add_reader(child.sock, self._read, child)
        child.loop = loop
        self._write(child)

    def _unbind(self, child: _Child) -> None:
        if child.loop is not None and not child.loop.is_closed():
            child.loop.remove_reader(child.sock)
            if child.writing:
                child.loop.remove_writer(child.sock)
        child.loop, child.writing = None, False

    def _settle(self, message: dict[str, Any], child: _Child) -> None:
        waiters, outcomes = [], []
        for token, outcome in [*message.get("done", ()), *message.get("got", ())]:
            future = self._waiting.pop(token, None)
            if future is not None:
                waiters.append(future)
                outcomes.append(RuntimeError(outcome) if isinstance(outcome, str) else outcome)
        statements, transactions = message.get("statements", 0), message.get("transactions", 0)
        self.statements += statements - child.counted[0]
        self.transactions += transactions - child.counted[1]
        child.counted = (statements, transactions)
        settle_here(waiters, outcomes)

    def _lost(self, child: _Child) -> None:
        """The child exited: fail whatever it was asked and not yet answered."""
        if child.gone:
            return
        child.gone = True
        self._unbind(child)
        threading.Thread(target=child.proc.wait, name="ctxeval-case-writer-reap", daemon=True).start()
        waiters, self._waiting = list(self._waiting.values()), {}
        self._cases, self._gets = [], []
        if not self._closed:
            log.error("the case writer process exited (%s); %d case(s) and read(s) it had are failed",
                      child.proc.poll(), len(waiters))
        settle_here(waiters, [RuntimeError("the case writer process exited")] * len(waiters))


def settle_here(futures: Sequence[asyncio.Future[Any]], outcomes: Sequence[Any]) -> None:
    """Settle futures with their outcomes: directly where they belong to the running loop, through
    their own loop otherwise (a closed loop: nobody waits for them any more)."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    mine, others, theirs = [], [], []
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.get_loop() is here:
            mine.append((future, outcome))
        else:
            others.append((future.get_loop(), future))
            theirs.append(outcome)
    _set(mine)
    settle(others, theirs)


class _Child:
    """One writer process and this side's end of its socket."""

    def __init__(self, database_url: str) -> None:
        self.gone = False
        self.ready = False
        self.counted = (0, 0)
        self.loop: asyncio.AbstractEventLoop | None = None  # watching the socket
        self.writing = False  # the loop waits to write the rest of ``out``
        self.out = bytearray()
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # where the app package is, for ``-m``
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "app.execution.writer_process", str(child.fileno())],
                                         pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, env=env)
        finally:
            child.close()
        self.sock = parent
        send_frame(parent, {"database_url": database_url})  # a frame, not an argument: the URL may hold a password
        parent.setblocking(False)
        self.frames = Frames(parent)
