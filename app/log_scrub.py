"""Keys out of the service's logs.

:func:`install` wraps the log record factory, so every record of every logger (the service's,
uvicorn's, DBOS's, httpx's) has its message and traceback scrubbed (:func:`evals.redact.scrub`) of
the endpoint keys this process has read and of anything shaped like a credential, before any handler
formats it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from evals import scrub

_KNOWN: set[str] = set()
_KNOWN_MAX = 10_000
_LOCK = threading.Lock()


def remember_secret(secret: str | None) -> None:
    """A key this process handed to the engine: masked in every log line from now on."""
    if not secret or len(secret) < 4:
        return
    with _LOCK:
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        _KNOWN.add(secret)


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    with _LOCK:
        known = tuple(_KNOWN)
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not format is left to the handler's own error path
        return record
    cleaned = scrub(message, known)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), known)
    return record


def install() -> None:
    """Scrub every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "ctxeval_scrubs", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(current(*args, **kwargs))

    factory.ctxeval_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
