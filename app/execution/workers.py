"""Executors that survive each other.

Every executing process (``serve --execution inprocess`` or ``worker``) beats in the ``executor``
table every ``heartbeat_interval_s``. At each beat it also looks for executors that are dead: a row
not renewed for ``worker_timeout_s``, a row marked stopped (a clean shutdown), or an executor that
owns pending DBOS workflows and has no row at all. Their pending workflows (chunks of cases, run
workflows) go back to their queues through DBOS's recovery, which frees their concurrency slots; any
live executor then executes them, and a chunk re-runs only its cases with no stored row. DBOS's
recovery is idempotent, so several executors reaping the same dead one is harmless. A dead worker's
cases are therefore finished within about ``worker_timeout_s + heartbeat_interval_s`` (≤ 40 s with
the defaults).

SQLite: DBOS's claim of queued work is not safe across processes on one SQLite file (two executors
were measured exceeding an endpoint's limit), so one executor per SQLite database is the rule: the
first holds an exclusive lock on ``<database>.executor.lock`` for its lifetime (released by the
kernel even on SIGKILL) and a second one is refused with a message.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Engine as DbEngine

from app import crud
from app.db import session_scope
from app.models import as_utc, utcnow

log = logging.getLogger("ctxeval.workers")


class ExecutorRefused(RuntimeError):
    """This process may not execute runs on the configured database."""


# ------------------------------------------------------------------------------------ SQLite rule
class SqliteExecutorLock:
    """The one-executor-per-SQLite-database lock, held for the executor's lifetime."""

    def __init__(self, database: Path, executor_id: str) -> None:
        self.path = Path(f"{database}.executor.lock")
        self._file: IO[str] | None = None
        self._executor_id = executor_id

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115  (kept open while the lock is held)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ExecutorRefused(
                f"refused: {holder} already executes runs on this SQLite database, and SQLite allows one "
                "executor per database (a second one could exceed endpoint limits). Stop it, or use "
                "PostgreSQL for several workers; `ctxeval serve --execution none` serves the API without "
                "executing.") from None
        f.seek(0)
        f.truncate()
        f.write(f"executor '{self._executor_id}' (pid {os.getpid()} on {socket.gethostname()})")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


# -------------------------------------------------------------------------------------- liveness
class Heartbeat:
    """Beats for this executor and recovers dead executors' work, on a thread of its own."""

    def __init__(self, db: DbEngine, executor_id: str, *, interval_s: float, timeout_s: float,
                 recover: Callable[[list[str]], int], pending_owners: Callable[[], set[str]]) -> None:
        self._db = db
        self.executor_id = executor_id
        self._interval = interval_s
        self._timeout = timeout_s
        self._recover = recover
        self._pending_owners = pending_owners
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._host, self._pid = socket.gethostname(), os.getpid()
        self.recovered: list[str] = []
        self.live_peers: int | None = None  # other executors seen alive at the last look (None: not looked yet)

    def beat(self, *, started: bool = False) -> None:
        with session_scope(self._db) as session:
            crud.beat(session, executor_id=self.executor_id, host=self._host, pid=self._pid, started=started)

    def start(self) -> None:
        """Beat once now (so no other executor takes this id's work for dead), then on a thread."""
        self.beat(started=True)
        try:
            self.dead_executors()  # counts the live peers
        except Exception as e:  # counted again at the next beat
            log.debug("executors not listed: %s", e)

    def start_reaping(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ctxeval-heartbeat", daemon=True)
        self._thread.start()

    def stop_reaping(self) -> None:
        """End the heartbeat thread (before DBOS shuts down: it calls DBOS's recovery)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def stop(self) -> None:
        """End the thread and mark this executor stopped: the others recover its unfinished work."""
        self.stop_reaping()
        try:
            with session_scope(self._db) as session:
                crud.mark_stopped(session, executor_id=self.executor_id)
        except Exception as e:  # the database is gone: the others see the heartbeat go stale instead
            log.warning("could not mark executor %s stopped: %s", self.executor_id, e)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
                self.reap()
            except Exception as e:  # a database hiccup must not end the heartbeat
                log.warning("heartbeat of %s: %s", self.executor_id, e)

    def dead_executors(self) -> tuple[list[str], datetime]:
        now = utcnow()
        cutoff = now - timedelta(seconds=self._timeout)
        with session_scope(self._db) as session:
            rows = crud.list_executors(session)
        known = {r.executor_id for r in rows}
        dead = [r.executor_id for r in rows if r.executor_id != self.executor_id
                and (r.stopped or (as_utc(r.last_seen) or now) < cutoff)]
        self.live_peers = sum(1 for r in rows if r.executor_id != self.executor_id) - len(dead)
        orphans = self._pending_owners() - known - {self.executor_id}
        return sorted(set(dead) | orphans), cutoff

    def reap(self) -> list[str]:
        dead, cutoff = self.dead_executors()
        with session_scope(self._db) as session:
            known = {r.executor_id for r in crud.list_executors(session)}
        reaped = []
        for executor_id in dead:
            if executor_id in known:  # claim it: only the executor whose delete succeeds recovers it,
                with session_scope(self._db) as session:  # and one that beat again meanwhile is alive
                    if not crud.forget_executor(session, executor_id=executor_id, seen_before=cutoff):
                        continue
            n = self._recover([executor_id])
            reaped.append(executor_id)
            log.warning("executor %s is gone: %d unfinished workflow(s) handed back to the queues", executor_id, n)
            self.recovered.append(executor_id)
        return reaped


def dbos_recover(executor_ids: list[str]) -> int:
    from dbos import DBOS

    return len(DBOS._recover_pending_workflows(executor_ids))


def dbos_pending_owners() -> set[str]:
    from dbos import DBOS

    from app.execution.dispatch import APP_VERSION

    rows: list[Any] = DBOS.list_workflows(status="PENDING", app_version=APP_VERSION, load_input=False,
                                          load_output=False)
    return {r.executor_id for r in rows if r.executor_id}
