"""Suites: immutable versions identified by their content hash."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app import crud
from app.errors import ConflictError, NotFoundError
from app.models import SuiteRecord, as_utc
from app.schemas import DocumentPublic, DocumentsPublic, QuestionPublic, QuestionsPublic, SuitePublic
from evals import Suite, UserInputError, format_of, parse_suite

IMPORTED_EXTENSIONS = (".csv", ".zip", ".txt", ".md", ".html", ".htm", ".pdf")
LOADED_SUITES = 4  # suites a process keeps loaded (see ``load_record``)
_loaded: OrderedDict[tuple[int, str], Suite] = OrderedDict()
_loaded_lock = threading.Lock()


def to_public(record: SuiteRecord, *, n_runs: int = 0, created: bool = False) -> SuitePublic:
    return SuitePublic(
        id=record.id or 0, name=record.name, version=record.version, content_hash=record.content_hash,
        description=record.description, default_scorers=record.default_scorers,
        n_documents=record.n_documents, n_questions=record.n_questions, n_chars=record.n_chars,
        n_runs=n_runs, created_at=as_utc(record.created_at), created=created,  # type: ignore[arg-type]
    )


def get_record(session: Session, suite_id: int) -> SuiteRecord:
    record = crud.get_suite(session, suite_id=suite_id)
    if record is None:
        raise NotFoundError(f"suite {suite_id} not found", field="suite_id")
    return record


def get(session: Session, suite_id: int) -> SuitePublic:
    record = get_record(session, suite_id)
    runs = crud.count_runs_by_suite(session, suite_ids=[suite_id])
    return to_public(record, n_runs=runs.get(suite_id, 0))


def list_public(session: Session, *, offset: int, limit: int, name: str | None) -> tuple[list[SuitePublic], int]:
    records, count = crud.list_suites(session, offset=offset, limit=limit, name=name)
    runs = crud.count_runs_by_suite(session, suite_ids=[r.id for r in records if r.id is not None])
    return [to_public(r, n_runs=runs.get(r.id or 0, 0)) for r in records], count


def store(session: Session, suite: Suite) -> SuitePublic:
    """Store ``suite``; identical content already stored returns that version (``created`` false)."""
    content_hash = suite.content_hash
    existing = crud.get_suite_by_hash(session, content_hash=content_hash)
    if existing is not None:
        return get(session, existing.id or 0)
    for _ in range(3):  # a concurrent upload may take the same version number or the same content
        try:
            record = crud.create_suite(session, suite=suite, content_hash=content_hash)
            session.commit()
            _keep((int(record.id or 0), content_hash), suite)  # the first run of it reads no documents back
            return to_public(record, created=True)
        except IntegrityError:
            session.rollback()
            existing = crud.get_suite_by_hash(session, content_hash=content_hash)
            if existing is not None:
                return get(session, existing.id or 0)
    raise ConflictError("the suite could not be stored because of concurrent uploads; try again")


def parse_upload(filename: str, data: bytes) -> Suite:
    """Read an uploaded suite file (its extension says yaml, json or jsonl); errors name the file,
    line and field as the client sent them."""
    name = Path(filename or "").name or "upload"
    if Path(name).suffix.lower() in IMPORTED_EXTENSIONS:
        raise UserInputError(f"the extension {Path(name).suffix.lower()} is not a suite file's (.json, .jsonl, "
                             ".yaml, .yml): a questions or document file is imported with your documents and a "
                             "suite name (Suites → Import your documents and questions, POST /api/suites/import, "
                             "or ctxeval suite import)", source=name)
    fmt = format_of(name)
    return parse_suite(data, fmt, source=name, default_name=Path(name).stem)


def questions(session: Session, suite_id: int, *, offset: int, limit: int,
              search: str | None = None) -> QuestionsPublic:
    """A page of the suite's questions; ``search`` keeps those whose id, text or answers contain it
    (case-insensitive), and ``count`` is then the number of matches."""
    record = get_record(session, suite_id)
    search = (search or "").strip() or None
    rows = crud.list_questions(session, suite_id=suite_id, offset=offset, limit=limit, search=search)
    data = [QuestionPublic(position=r.position, id=r.question_id, question=r.body["question"],
                           answers=r.body.get("answers", []), evidence=r.body.get("evidence", []),
                           doc_ids=r.body.get("doc_ids"), metadata=r.body.get("metadata", {})) for r in rows]
    count = record.n_questions if search is None else crud.count_questions(session, suite_id=suite_id,
                                                                           search=search)
    return QuestionsPublic(data=data, count=count)


def documents(session: Session, suite_id: int, *, offset: int, limit: int, search: str | None = None,
              preview_chars: int = 400) -> DocumentsPublic:
    """A page of the suite's documents (a text preview, its length, the questions citing it);
    ``search`` matches id, title or text."""
    get_record(session, suite_id)
    search = (search or "").strip() or None
    rows, count = crud.list_documents(session, suite_id=suite_id, offset=offset, limit=limit, search=search)
    data = []
    for r in rows:
        text = r.body.get("text", "")
        data.append(DocumentPublic(position=r.position, id=r.doc_id, title=r.body.get("title") or "",
                                   n_chars=len(text), preview=text[:preview_chars],
                                   metadata=r.body.get("metadata") or {}))
    return DocumentsPublic(data=data, count=count)


def load(session: Session, suite_id: int) -> Suite:
    return load_record(session, get_record(session, suite_id))


def load_record(session: Session, record: SuiteRecord) -> Suite:
    """The stored suite. A suite version never changes (its content hash, name included, is unique), so
    a process keeps the last few it loaded: the API creating a run and the executor planning it in the
    same process read and validate its documents and questions once. Callers must not modify it."""
    key = (int(record.id or 0), record.content_hash)
    with _loaded_lock:
        suite = _loaded.get(key)
        if suite is not None:
            _loaded.move_to_end(key)
            return suite
    suite = crud.load_suite(session, record=record)
    _keep(key, suite)
    return suite


def _keep(key: tuple[int, str], suite: Suite) -> None:
    with _loaded_lock:
        _loaded[key] = suite
        _loaded.move_to_end(key)
        while len(_loaded) > LOADED_SUITES:
            _loaded.popitem(last=False)


def delete(session: Session, suite_id: int) -> None:
    record = get_record(session, suite_id)
    used = crud.count_runs_by_suite(session, suite_ids=[suite_id]).get(suite_id, 0)
    if used:
        raise ConflictError(f"suite {suite_id} is used by {used} run(s); delete those runs first")
    try:
        crud.delete_suite(session, record=record)
        session.commit()
    except IntegrityError as e:  # a run was created in between
        session.rollback()
        raise ConflictError(f"suite {suite_id} is used by a run") from e
