"""The garbage collector of an executing process.

An executing process (``ctxeval serve --execution inprocess``, ``ctxeval worker``) holds a large heap
of long-lived objects: the web app, SQLAlchemy, pydantic and DBOS. CPython's cyclic collector walks
the whole heap on each full collection, holding the GIL all along; measured on a 500-case durable run
(50 ms fake server, SQLite), full collections took 100–235 ms each, and collections of every
generation together 330–510 ms of a run that lasts about 1.5 s, against 40–120 ms for the in-memory
runner on the same cases.

While it executes, the process therefore keeps what existed at start out of the collector's sight
(``gc.freeze``, after one full collection so that no garbage is frozen) and collects the youngest
generation after 10,000 net allocations instead of 700: a run's short-lived objects (requests, rows,
results) are mostly freed by reference counting anyway. Measured the same way: 70–90 ms of
collections per run. :func:`release` undoes both when the executor stops: the frozen objects go back to
the oldest generation and one full collection frees what died meanwhile, so a process that starts and
stops executors, as the tests do, does not keep its old executors' heaps.
"""

from __future__ import annotations

import gc
import threading

YOUNG_THRESHOLD = 10_000  # allocations before a collection of the youngest generation (CPython: 700)

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None


def tune() -> None:
    """Freeze the heap as it is and raise the youngest generation's threshold (nested calls count)."""
    global _holders, _saved
    with _lock:
        _holders += 1
        if _holders > 1:
            return
        _saved = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), _saved[1], _saved[2])


def release() -> None:
    """Undo :func:`tune` once its last caller is done."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders:
            return
        if _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
        gc.unfreeze()
        gc.collect()  # what died while frozen, at once: left to the next full collection, it slowed
        # whatever the process did next (the in-memory runner by a quarter, measured)


def tuned() -> bool:
    return _holders > 0
