"""Suites beyond storing them: what one holds (counts, token lengths, samples) and generating one by kind.

Generation uses the engine's generator registry (``evals.suites.registry``) when this installation has
it; :func:`generator_kinds` is empty otherwise, and the pages offer upload only.
"""

from __future__ import annotations

import importlib
from collections import Counter, OrderedDict
from threading import Lock
from typing import Any

from sqlmodel import Session

from app.errors import UnavailableError
from app.schemas import SuitePublic
from app.services import suites as suite_service
from evals.domain import Suite
from evals.tokens import local_tokenizer

TOKENIZER = "cl100k"
SAMPLE_QUESTIONS = 8
_CACHE_SIZE = 16
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_lock = Lock()


def _registry() -> Any | None:
    try:
        return importlib.import_module("evals.suites.registry")
    except ImportError:
        return None


def generator_kinds() -> list[str]:
    """Suite kinds this installation can generate (empty when the generators are not installed)."""
    registry = _registry()
    return list(registry.list_kinds()) if registry is not None else []


def generate(session: Session, kind: str, params: dict[str, Any]) -> SuitePublic:
    """Generate a suite of ``kind`` from ``params`` and store it (an identical one is reused)."""
    registry = _registry()
    if registry is None:
        raise UnavailableError("suite generators are not available in this installation; upload a suite file")
    suite: Suite = registry.generate(kind, params, local_tokenizer(TOKENIZER))
    return suite_service.store(session, suite)


def bucket(tokens: int) -> str:
    """The power-of-two range ``tokens`` falls in, e.g. ``1024-2047``; ``0`` on its own."""
    if tokens <= 0:
        return "0"
    low = 1 << (tokens.bit_length() - 1)
    return f"{low}-{2 * low - 1}"


def _buckets(values: list[int]) -> dict[str, int]:
    counted = Counter(bucket(v) for v in values)
    return {k: counted[k] for k in sorted(counted, key=lambda b: int(b.split("-")[0]))}


def _summarize(suite: Suite) -> dict[str, Any]:
    tok = local_tokenizer(TOKENIZER)
    doc_tokens = {d.id: tok.count(d.text) for d in suite.documents}
    corpus = sum(doc_tokens.values())
    contexts = [corpus if q.doc_ids is None else sum(doc_tokens[i] for i in q.doc_ids) for q in suite.questions]
    qtypes = Counter(str(q.metadata.get("qtype") or q.metadata.get("task") or "–") for q in suite.questions)
    depths = sorted({float(q.metadata["depth"]) for q in suite.questions if q.metadata.get("depth") is not None})
    return {
        "tokenizer": tok.name, "documents": len(suite.documents), "questions": len(suite.questions),
        "corpus_tokens": corpus, "document_tokens": _buckets(list(doc_tokens.values())),
        "context_tokens": _buckets(contexts), "question_types": dict(sorted(qtypes.items())),
        "with_evidence": sum(1 for q in suite.questions if q.evidence),
        "unanswerable": sum(1 for q in suite.questions if q.unanswerable),
        "depths": depths,
    }


def inspect(session: Session, suite_id: int) -> dict[str, Any]:
    """Counts, token lengths per power-of-two bucket (cl100k), question types, depths and sample
    questions of a stored suite. Computed once per suite content and kept in memory."""
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
    return {**cached, "sample": [q.model_dump() for q in sample.data]}
