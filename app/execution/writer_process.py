"""The case writer's child process: group commit and response-cache reads off the executor's process.

Started by :class:`app.execution.writer.ProcessCaseWriter` with one end of a socket pair. Frames both
ways are a 4-byte big-endian length and a pickle (the parent is the only peer: the socket pair is
private to the two processes). The first frame is the configuration (``database_url``); then each
frame from the parent carries finished cases (``token``, run id, light row, detail row, blobs), cache
reads (``token``, keys), the held cache entries, how many cases the parent is executing, and
``close``. Replies say, per token, whether the case is committed (``True``), its run gone
(``False``) or why it is not stored (a message), and what a read found.

Cases wait up to ``LINGER_S`` for the others still executing, as on the writer thread, and are
committed in one transaction with the cache entries; reads are answered at once, from the entries
handed over but not yet committed first. At ``close`` or when the parent goes away (its end of the
socket closes, SIGKILL included), whatever arrived is committed, then the process exits: a case is
never reported stored before its transaction commits, so the parent's guarantee is the thread
writer's.
"""

from __future__ import annotations

import logging
import pickle
import select
import socket
import struct
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError, OperationalError

from app import crud
from app.db import make_engine, session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine as DbEngine

_HEADER = struct.Struct(">I")
log = logging.getLogger("ctxeval.writer")
KNOWN_BLOBS = 4096  # (run, sha256) pairs this process has written, so a 4 MB text is sent once
RETRIES = 5
LINGER_S = 0.01  # a transaction waits up to this long for the cases other lanes are executing
LINGER_ITEMS = 32


@dataclass
class CaseRows:
    """One finished case as the database stores it (``services.cases.stored_fields``)."""

    run_id: int
    light: dict[str, Any]
    detail: dict[str, Any]
    blobs: dict[str, str] = field(default_factory=dict)


Outcome = bool | Exception  # committed, its run is gone (False), or why it was not stored


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




def encode_frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def send_frame(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode_frame(message))


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> Any:
    """The next frame (blocking), or None once the peer has closed its end."""
    header = _read_exactly(sock, _HEADER.size)
    if header is None:
        return None
    data = _read_exactly(sock, _HEADER.unpack(header)[0])
    return None if data is None else pickle.loads(data)


class Frames:
    """Frames from a non-blocking socket, as many as have arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.closed = False

    def read(self) -> list[Any]:
        try:
            while True:
                chunk = self._sock.recv(1 << 20)
                if not chunk:
                    self.closed = True
                    break
                self._buf += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.closed = True
        out = []
        while len(self._buf) >= _HEADER.size:
            size = _HEADER.unpack_from(self._buf)[0]
            if len(self._buf) < _HEADER.size + size:
                break
            out.append(pickle.loads(bytes(self._buf[_HEADER.size:_HEADER.size + size])))
            del self._buf[:_HEADER.size + size]
        return out


def serve(sock: socket.socket) -> None:
    import sqlalchemy as sa

    config = recv_frame(sock)
    if config is None:
        return
    db = make_engine(config["database_url"])
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(db, "before_cursor_execute", count)
    with db.connect():  # a database that cannot be opened ends this process before any case waits on it
        pass
    send_frame(sock, {"ready": True})
    group = GroupCommit(db)
    frames = Frames(sock)
    sock.setblocking(False)
    pending: list[tuple[int, CaseRows]] = []
    handed: dict[str, dict[str, Any]] = {}  # cache entries received, not yet committed
    executing, first_at, closing = 0, 0.0, False

    def reply(message: dict[str, Any]) -> None:
        message["statements"] = statements
        message["transactions"] = group.transactions
        sock.setblocking(True)
        try:
            send_frame(sock, message)
        except OSError:  # the parent is gone: nobody waits for the answer
            pass
        finally:
            sock.setblocking(False)

    def answer(gets: list[tuple[int, list[str]]]) -> None:
        wanted = sorted({k for _, keys in gets for k in keys if k not in handed})
        try:
            with session_scope(db) as session:
                found = crud.cache_get_many(session, keys=wanted)
        except Exception as e:
            reply({"got": [(token, f"{type(e).__name__}: {e}") for token, _ in gets]})
            return
        found.update((k, v) for k, v in handed.items())
        reply({"got": [(token, {k: found[k] for k in keys if k in found}) for token, keys in gets]})

    try:
        while True:
            if closing and not pending:
                break
            wait: float | None = None
            if pending:
                full = len(pending) >= min(executing, LINGER_ITEMS)
                wait = 0.0 if closing or full else max(0.0, first_at + LINGER_S - time.monotonic())
            if wait != 0.0 and not closing:
                readable, _, _ = select.select([sock], [], [], wait)
                messages = frames.read() if readable else []
            else:
                messages = frames.read() if not closing else []
            gets: list[tuple[int, list[str]]] = []
            for m in messages:
                for key, value in m.get("cache", ()):
                    handed.setdefault(key, value)
                if m.get("cases"):
                    if not pending:
                        first_at = time.monotonic()
                    pending += [(token, CaseRows(run_id, light, detail, blobs))
                                for token, run_id, light, detail, blobs in m["cases"]]
                executing = m.get("executing", executing)
                gets += m.get("gets", [])
                closing = closing or bool(m.get("close"))
            if frames.closed:
                closing = True
            if gets:
                answer(gets)
            due = pending and (closing or len(pending) >= min(executing, LINGER_ITEMS)
                               or time.monotonic() >= first_at + LINGER_S)
            if due:
                batch, pending = pending, []
                cache, handed = list(handed.items()), {}
                outcomes = group.write([rows for _, rows in batch], cache)
                errors = [o for o in outcomes if isinstance(o, Exception)]
                if errors:
                    log.error("could not store %d case(s): %s", len(errors), errors[0])
                reply({"done": [(token, o if isinstance(o, bool) else f"{type(o).__name__}: {o}")
                                for (token, _), o in zip(batch, outcomes, strict=True)]})
        if handed:  # entries that came with the last frame and no case
            with session_scope(db) as session:
                crud.cache_put_many(session, rows=list(handed.items()))
    finally:
        db.dispose()


def main(argv: list[str]) -> int:
    from app import log_scrub

    log_scrub.install()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=int(argv[0]))
    try:
        serve(sock)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
