"""Suites beyond storing them: what one holds (counts, token lengths, depths, samples) and generating one
by kind with the engine's generators (``evals.suites.registry``)."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any

from sqlmodel import Session

from app.schemas import SuitePublic
from app.services import suites as suite_service
from evals import Suite, UserInputError, local_tokenizer, parse_depths, parse_lengths
from evals import suite_generators as registry
from evals import summarize_suite as summarize

TOKENIZER = "cl100k"
SAMPLE_QUESTIONS = 8
_CACHE_SIZE = 16
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_lock = Lock()


def generator_kinds() -> list[str]:
    """Suite kinds that can be generated."""
    return registry.list_kinds()


def generator_params(*, lengths: str = "", depths: str = "", samples: str = "", seed: str = "",
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generator parameters from text fields as ``ctxeval suite generate`` reads them (``lengths``
    ``1k,4k``, ``depths`` ``0,50,100``) plus any others; a parameter given twice is refused."""
    named: dict[str, Any] = {}
    if lengths.strip():
        named["lengths"] = parse_lengths(lengths)
    if depths.strip():
        named["depths"] = parse_depths(depths)
    for key, raw in (("samples", samples), ("seed", seed)):
        if raw.strip():
            try:
                named[key] = int(raw)
            except ValueError:
                raise UserInputError(f"'{raw}' is not a whole number", field=key) from None
    extra = extra or {}
    for key in named:
        if key in extra:
            raise UserInputError(f"'{key}' is given both in its own field and among the parameters", field=key)
    return {**named, **extra}


def generate(session: Session, kind: str, params: dict[str, Any]) -> SuitePublic:
    """Generate a suite of ``kind`` from ``params`` (cl100k token lengths) and store it; identical
    content already stored is that version. ``haystack_file`` names a file on the machine that runs the
    generator, so the service refuses it: a client sends the text itself as ``haystack_text``."""
    if "haystack_file" in params:
        raise UserInputError("haystack_file reads a file on the server and is refused here; send the text as "
                             "haystack_text", field="haystack_file")
    suite: Suite = registry.generate(kind, params, local_tokenizer(TOKENIZER))
    return suite_service.store(session, suite)


def _summarize(suite: Suite) -> dict[str, Any]:
    info = summarize(suite, local_tokenizer(TOKENIZER))
    info["depths"] = sorted({float(q.metadata["depth"]) for q in suite.questions
                             if isinstance(q.metadata.get("depth"), int | float)})
    return info


def inspect(session: Session, suite_id: int) -> dict[str, Any]:
    """``evals.suites.summary.summarize`` of a stored suite (counts, cl100k token lengths per
    power-of-two bucket, question types) plus its evidence depths and its first questions. Computed once
    per suite content and kept in memory."""
    record = suite_service.get_record(session, suite_id)
    with _lock:
        cached = _cache.get(record.content_hash)
    if cached is None:
        cached = _summarize(suite_service.load(session, suite_id))
        with _lock:
            _cache[record.content_hash] = cached
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    sample = suite_service.questions(session, suite_id, offset=0, limit=SAMPLE_QUESTIONS)
    return {**cached, "first_questions": [q.model_dump() for q in sample.data]}
