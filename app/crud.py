"""Every query of the service. Functions take the session first and everything else by keyword."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app import log_scrub
from app.models import (
    ACTIVE_STATUSES,
    ApiToken,
    CachedResponse,
    CaseDetailRecord,
    CaseRecord,
    DocumentRecord,
    EndpointKey,
    EndpointRecord,
    ExecutorRecord,
    PromptBlob,
    QuestionRecord,
    RunRecord,
    RunStatus,
    RunViewRecord,
    SuiteRecord,
    utcnow,
)
from evals import domain

TOKEN_PREFIX = "ctx_"


def ping(session: Session) -> None:
    """One round trip to the database; raises when it does not answer."""
    session.execute(sa.text("SELECT 1"))


def _insert(session: Session, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's dialect."""
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)


def _table(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


def _executemany(session: Session, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
    """A Core ``executemany`` on the session's connection and transaction: the rows go to the driver
    as they are (the ORM's bulk path builds and checks an object state per row: most of a group
    commit's CPU)."""
    session.connection().execute(stmt, list(rows))


# ------------------------------------------------------------------------------------------ endpoints
def create_endpoint(session: Session, *, endpoint: domain.Endpoint) -> EndpointRecord:
    data = endpoint.model_dump(mode="json", exclude={"api_key", "name", "base_url", "model"})
    record = EndpointRecord(name=endpoint.name, base_url=endpoint.base_url, model=endpoint.model, config=data)
    session.add(record)
    session.flush()
    _set_key(session, endpoint_id=_id(record), api_key=endpoint.api_key, base_url=endpoint.base_url)
    return record


def update_endpoint(session: Session, *, record: EndpointRecord, endpoint: domain.Endpoint,
                    set_key: bool) -> EndpointRecord:
    record.name = endpoint.name
    record.base_url = endpoint.base_url
    record.model = endpoint.model
    record.config = endpoint.model_dump(mode="json", exclude={"api_key", "name", "base_url", "model"})
    record.updated_at = utcnow()
    session.add(record)
    if set_key:
        _set_key(session, endpoint_id=_id(record), api_key=endpoint.api_key, base_url=endpoint.base_url)
    session.flush()
    return record


def _set_key(session: Session, *, endpoint_id: int, api_key: Any, base_url: str) -> None:
    session.execute(sa.delete(EndpointKey).where(col(EndpointKey.endpoint_id) == endpoint_id))
    value = api_key.get_secret_value() if api_key is not None else ""
    if value:
        session.add(EndpointKey(endpoint_id=endpoint_id, api_key=value, base_url=base_url))


def delete_endpoint_key(session: Session, *, endpoint_id: int) -> bool:
    """Remove an endpoint's key; True when there was one."""
    result = session.execute(sa.delete(EndpointKey).where(col(EndpointKey.endpoint_id) == endpoint_id))
    return bool(getattr(result, "rowcount", 0))


def get_endpoint(session: Session, *, endpoint_id: int) -> EndpointRecord | None:
    return session.get(EndpointRecord, endpoint_id)


def get_endpoint_by_name(session: Session, *, name: str) -> EndpointRecord | None:
    return session.exec(select(EndpointRecord).where(EndpointRecord.name == name)).first()


def list_endpoints(session: Session, *, offset: int = 0, limit: int = 100) -> tuple[list[EndpointRecord], int]:
    count = session.exec(select(func.count()).select_from(EndpointRecord)).one()
    rows = session.exec(select(EndpointRecord).order_by(col(EndpointRecord.id)).offset(offset).limit(limit)).all()
    return list(rows), count


def get_endpoint_key(session: Session, *, endpoint_id: int, base_url: str | None = None) -> str | None:
    """The endpoint's key for requests to ``base_url`` (default: the endpoint's current base_url).

    A key is handed out only for the base URL it was stored with, so a key can never follow a changed
    base_url (or a run spec naming another one) to a different server."""
    key = session.get(EndpointKey, endpoint_id)
    if key is None:
        return None
    if base_url is None:
        record = session.get(EndpointRecord, endpoint_id)
        base_url = record.base_url if record is not None else None
    if base_url is None or key.base_url != base_url:
        return None
    log_scrub.remember_secret(key.api_key)  # masked in this process's logs from now on
    return key.api_key


def endpoint_ids_with_keys(session: Session, *, endpoint_ids: Sequence[int]) -> set[int]:
    """Ids of the endpoints whose key is usable (stored with their current base_url)."""
    rows = session.exec(select(EndpointKey.endpoint_id).join(
        EndpointRecord, col(EndpointRecord.id) == col(EndpointKey.endpoint_id)).where(
        col(EndpointKey.endpoint_id).in_(endpoint_ids), col(EndpointKey.base_url) == col(EndpointRecord.base_url)))
    return set(rows.all())


def delete_endpoint(session: Session, *, record: EndpointRecord) -> None:
    session.delete(record)
    session.flush()


# --------------------------------------------------------------------------------------------- suites
def get_suite(session: Session, *, suite_id: int) -> SuiteRecord | None:
    return session.get(SuiteRecord, suite_id)


def get_suite_by_hash(session: Session, *, content_hash: str) -> SuiteRecord | None:
    return session.exec(select(SuiteRecord).where(SuiteRecord.content_hash == content_hash)).first()


def create_suite(session: Session, *, suite: domain.Suite, content_hash: str) -> SuiteRecord:
    """Store a new suite version: documents and questions as rows in suite order."""
    latest = session.exec(select(func.max(SuiteRecord.version)).where(SuiteRecord.name == suite.name)).one()
    record = SuiteRecord(
        name=suite.name, version=(latest or 0) + 1, content_hash=content_hash, description=suite.description,
        default_scorers=list(suite.default_scorers), meta=suite.metadata, n_documents=len(suite.documents),
        n_questions=len(suite.questions), n_chars=sum(len(d.text) for d in suite.documents),
    )
    session.add(record)
    session.flush()
    sid = _id(record)
    if suite.documents:
        session.execute(sa.insert(DocumentRecord), [
            {"suite_id": sid, "position": i, "doc_id": d.id, "body": d.model_dump(mode="json")}
            for i, d in enumerate(suite.documents)
        ])
    session.execute(sa.insert(QuestionRecord), [
        {"suite_id": sid, "position": i, "question_id": q.id, "body": q.model_dump(mode="json")}
        for i, q in enumerate(suite.questions)
    ])
    return record


def list_suites(session: Session, *, offset: int = 0, limit: int = 100,
                name: str | None = None) -> tuple[list[SuiteRecord], int]:
    query = select(SuiteRecord)
    counter = select(func.count()).select_from(SuiteRecord)
    if name is not None:
        query = query.where(SuiteRecord.name == name)
        counter = counter.where(SuiteRecord.name == name)
    rows = session.exec(query.order_by(col(SuiteRecord.id)).offset(offset).limit(limit)).all()
    return list(rows), session.exec(counter).one()


def count_runs_by_suite(session: Session, *, suite_ids: Sequence[int]) -> dict[int, int]:
    rows = session.exec(
        select(RunRecord.suite_id, func.count()).where(col(RunRecord.suite_id).in_(suite_ids))
        .group_by(col(RunRecord.suite_id))
    ).all()
    return {sid: n for sid, n in rows}


def _contains(columns: Sequence[Any], text: str) -> Any:
    """Case-insensitive substring match on any of ``columns`` (LIKE with escaped wildcards)."""
    pattern = "%" + text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    return sa.or_(*[func.lower(c).like(pattern, escape="!") for c in columns])


def _question_conds(suite_id: int, search: str | None) -> list[Any]:
    conds = [col(QuestionRecord.suite_id) == suite_id]
    if search:
        body = QuestionRecord.body
        conds.append(_contains([col(QuestionRecord.question_id), body["question"].as_string(),
                                sa.cast(body["answers"], sa.String)], search))
    return conds


def list_questions(session: Session, *, suite_id: int, offset: int = 0, limit: int = 100,
                   search: str | None = None) -> list[QuestionRecord]:
    return list(session.exec(
        select(QuestionRecord).where(*_question_conds(suite_id, search))
        .order_by(col(QuestionRecord.position)).offset(offset).limit(limit)
    ).all())


def count_questions(session: Session, *, suite_id: int, search: str | None = None) -> int:
    return int(session.exec(select(func.count()).select_from(QuestionRecord)
                            .where(*_question_conds(suite_id, search))).one())


def _document_conds(suite_id: int, search: str | None) -> list[Any]:
    conds = [col(DocumentRecord.suite_id) == suite_id]
    if search:
        body = DocumentRecord.body
        conds.append(_contains([col(DocumentRecord.doc_id), body["title"].as_string(),
                                body["text"].as_string()], search))
    return conds


def list_documents(session: Session, *, suite_id: int, offset: int = 0, limit: int = 100,
                   search: str | None = None) -> tuple[list[DocumentRecord], int]:
    conds = _document_conds(suite_id, search)
    rows = session.exec(select(DocumentRecord).where(*conds).order_by(col(DocumentRecord.position))
                        .offset(offset).limit(limit)).all()
    count = session.exec(select(func.count()).select_from(DocumentRecord).where(*conds)).one()
    return list(rows), int(count)


def load_suite(session: Session, *, record: SuiteRecord) -> domain.Suite:
    """Rebuild the stored suite exactly (its content hash is unchanged)."""
    docs = session.exec(select(DocumentRecord.body).where(DocumentRecord.suite_id == record.id)
                        .order_by(col(DocumentRecord.position))).all()
    questions = session.exec(select(QuestionRecord.body).where(QuestionRecord.suite_id == record.id)
                             .order_by(col(QuestionRecord.position))).all()
    return domain.Suite.model_validate({
        "name": record.name, "description": record.description, "documents": list(docs),
        "questions": list(questions), "default_scorers": record.default_scorers, "metadata": record.meta})


def delete_suite(session: Session, *, record: SuiteRecord) -> None:
    session.delete(record)
    session.flush()


# ----------------------------------------------------------------------------------------------- runs
def create_run(session: Session, *, run: RunRecord) -> RunRecord:
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, *, run_id: int) -> RunRecord | None:
    return session.get(RunRecord, run_id)


def list_runs(session: Session, *, offset: int = 0, limit: int = 100, status: str | None = None,
              suite_id: int | None = None, tag: str | None = None) -> tuple[list[RunRecord], int]:
    conds: list[Any] = []
    if tag is not None:  # tags hold no quotes or backslashes, so the JSON text holds "tag" exactly
        escaped = tag.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        conds.append(sa.cast(col(RunRecord.tags), sa.String).like(f'%"{escaped}"%', escape="!"))
    if status is not None:
        conds.append(col(RunRecord.status) == status)
    if suite_id is not None:
        conds.append(col(RunRecord.suite_id) == suite_id)
    rows = session.exec(select(RunRecord).where(*conds).order_by(col(RunRecord.id).desc())
                        .offset(offset).limit(limit)).all()
    count = session.exec(select(func.count()).select_from(RunRecord).where(*conds)).one()
    return list(rows), count


def fail_run_attempt(session: Session, *, run_id: int, attempt: int, error: str,
                     statuses: Sequence[str]) -> None:
    """Mark the run failed with ``error``, only while it is still this ``attempt`` in one of ``statuses``."""
    session.execute(sa.update(RunRecord).where(
        col(RunRecord.id) == run_id, col(RunRecord.attempt) == attempt, col(RunRecord.status).in_(statuses),
    ).values(status=RunStatus.failed.value, error=error, finished_at=utcnow()))


def spec_endpoint_names(spec: dict[str, Any]) -> set[str]:
    """Every endpoint a stored spec names: tested, judge and embeddings."""
    names = {e.get("name") for e in spec.get("endpoints", [])}
    names.add((spec.get("judge") or {}).get("name"))
    names.add(((spec.get("embeddings") or {}).get("endpoint") or {}).get("name"))
    return {n for n in names if n}


def active_runs_using_endpoint(session: Session, *, name: str) -> list[int]:
    rows = session.exec(select(RunRecord).where(col(RunRecord.status).in_(ACTIVE_STATUSES))).all()
    return [_id(r) for r in rows if name in spec_endpoint_names(r.spec)]


def delete_run(session: Session, *, record: RunRecord) -> None:
    session.delete(record)
    session.flush()


def progress_rows(session: Session, *, run_ids: Sequence[int]) -> list[Any]:
    """Per (run, outcome): case count, then sums of prompt, completion and cached tokens and of cost."""
    return list(session.execute(
        sa.select(col(CaseRecord.run_id), col(CaseRecord.outcome), func.count(),
                  func.coalesce(func.sum(CaseRecord.prompt_tokens), 0),
                  func.coalesce(func.sum(CaseRecord.completion_tokens), 0),
                  func.coalesce(func.sum(CaseRecord.cached_tokens), 0),
                  func.coalesce(func.sum(CaseRecord.cost_usd), 0.0))
        .where(col(CaseRecord.run_id).in_(run_ids))
        .group_by(col(CaseRecord.run_id), col(CaseRecord.outcome))
    ).all())


def headline_rows(session: Session, *, run_ids: Sequence[int], scorer: str) -> list[Any]:
    """Per (run, endpoint, strategy): mean of score ``scorer`` over the cases that have it, and their number."""
    value = CaseRecord.scores[scorer].as_float()
    return list(session.execute(
        sa.select(col(CaseRecord.run_id), col(CaseRecord.endpoint), col(CaseRecord.strategy),
                  func.avg(value), func.count(value), func.min(CaseRecord.position))
        .where(col(CaseRecord.run_id).in_(run_ids))
        .group_by(col(CaseRecord.run_id), col(CaseRecord.endpoint), col(CaseRecord.strategy))
    ).all())


def outcome_counts(session: Session, *, run_id: int) -> dict[str, int]:
    rows = session.execute(sa.select(col(CaseRecord.outcome), func.count()).where(col(CaseRecord.run_id) == run_id)
                           .group_by(col(CaseRecord.outcome))).all()
    return {str(o): int(n) for o, n in rows}


def error_classes(session: Session, *, run_id: int,
                  limit: int = 5) -> list[tuple[str, int, str | None, list[str]]]:
    """(error class, cases, one example message, endpoints) of the run's errored cases, most frequent
    first."""
    errored = col(CaseRecord.outcome).in_(("error", "judge_error"))
    rows = session.execute(
        sa.select(col(CaseRecord.error_class), col(CaseRecord.endpoint), func.count(),
                  func.min(col(CaseRecord.error_message)))
        .where(col(CaseRecord.run_id) == run_id, errored)
        .group_by(col(CaseRecord.error_class), col(CaseRecord.endpoint))).all()
    merged: dict[str, list[Any]] = {}
    for c, endpoint, n, m in rows:
        item = merged.setdefault(str(c or "unknown"), [0, m, []])
        item[0] += int(n)
        item[1] = item[1] or m
        item[2].append(str(endpoint))
    ordered = sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [(c, n, m, sorted(eps)) for c, (n, m, eps) in ordered]


def delete_cases(session: Session, *, run_id: int, case_ids: Sequence[str]) -> int:
    """Delete these cases of the run (their details go with them); the number deleted."""
    n = 0
    ids = list(case_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        pks = list(session.exec(select(CaseRecord.id).where(CaseRecord.run_id == run_id,
                                                             col(CaseRecord.case_id).in_(chunk))).all())
        if pks:
            session.execute(sa.delete(CaseDetailRecord).where(col(CaseDetailRecord.case_pk).in_(pks)))
            session.execute(sa.delete(CaseRecord).where(col(CaseRecord.id).in_(pks)))
            n += len(pks)
    return n


def errored_case_ids(session: Session, *, run_id: int) -> set[str]:
    return set(session.exec(select(CaseRecord.case_id).where(
        CaseRecord.run_id == run_id, CaseRecord.outcome == "error")).all())


def count_cases_since(session: Session, *, run_id: int, since: Any) -> int:
    return session.exec(select(func.count()).select_from(CaseRecord).where(
        CaseRecord.run_id == run_id, col(CaseRecord.finished_at) >= since)).one()


# ---------------------------------------------------------------------------------------------- cases
def stored_case_ids(session: Session, *, run_id: int) -> set[str]:
    return set(session.exec(select(CaseRecord.case_id).where(CaseRecord.run_id == run_id)).all())


def case_is_stored(session: Session, *, run_id: int, case_id: str) -> bool:
    return session.exec(select(CaseRecord.id).where(
        CaseRecord.run_id == run_id, CaseRecord.case_id == case_id)).first() is not None


def upsert_case(session: Session, *, light: dict[str, Any], detail: dict[str, Any]) -> int:
    """Store one case keyed by (run_id, case_id): a second write replaces the first, never duplicates."""
    stmt = _insert(session, CaseRecord).values(**light)
    update = {k: stmt.excluded[k] for k in light if k not in ("run_id", "case_id")}
    stmt = stmt.on_conflict_do_update(index_elements=["run_id", "case_id"], set_=update)
    case_pk = session.execute(stmt.returning(col(CaseRecord.id))).scalar_one()
    dstmt = _insert(session, CaseDetailRecord).values(case_pk=case_pk, **detail)
    dstmt = dstmt.on_conflict_do_update(index_elements=["case_pk"], set_={k: dstmt.excluded[k] for k in detail})
    session.execute(dstmt)
    return int(case_pk)


def stored_among(session: Session, *, run_id: int, case_ids: Sequence[str]) -> set[str]:
    """Which of ``case_ids`` have a stored row (the checkpoint of a chunk)."""
    found: set[str] = set()
    ids = list(case_ids)
    for i in range(0, len(ids), 500):
        found.update(session.exec(select(CaseRecord.case_id).where(
            CaseRecord.run_id == run_id, col(CaseRecord.case_id).in_(ids[i:i + 500]))).all())
    return found


def count_cases(session: Session, *, run_id: int) -> int:
    return int(session.exec(select(func.count()).select_from(CaseRecord).where(CaseRecord.run_id == run_id)).one())


_UPSERTS: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def _upsert(session: Session, table: Any, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` of ``columns``, built once per dialect and table."""
    cache_key = (session.get_bind().dialect.name, table.__tablename__, columns)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        base = _insert(session, _table(table))
        stmt = _UPSERTS[cache_key] = base.on_conflict_do_update(
            index_elements=list(keys), set_={k: base.excluded[k] for k in columns if k not in keys})
    return stmt


def write_cases(session: Session, *, rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                blobs: Sequence[dict[str, Any]] = (), cache: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    """Store many finished cases in one transaction, each upserted by (run_id, case_id), with the
    prompt blobs they refer to and held response-cache entries: a fixed handful of statements
    (``executemany``) whatever the number of cases."""
    if blobs:
        bstmt = _insert(session, _table(PromptBlob)).on_conflict_do_nothing(index_elements=["run_id", "sha256"])
        _executemany(session, bstmt, blobs)
    if rows:
        now = utcnow()
        lights = [{"finished_at": now, **light} for light, _ in rows]
        _executemany(session, _upsert(session, CaseRecord, ("run_id", "case_id"), tuple(lights[0])), lights)
        run_ids = sorted({light["run_id"] for light in lights})
        case_ids = [light["case_id"] for light in lights]
        pks = {(r, c): pk for r, c, pk in session.connection().execute(  # Core: no ORM result per row
            sa.select(col(CaseRecord.run_id), col(CaseRecord.case_id), col(CaseRecord.id))
            .where(col(CaseRecord.run_id).in_(run_ids), col(CaseRecord.case_id).in_(case_ids))).all()}
        details = [{"case_pk": pks[(light["run_id"], light["case_id"])], **detail} for light, detail in rows]
        _executemany(session, _upsert(session, CaseDetailRecord, ("case_pk",), tuple(details[0])), details)
    cache_put_many(session, rows=cache)


def case_row_values(session: Session, *, run_id: int, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """The run's cases as tuples of ``columns`` of the case table, in plan order, read as the driver
    returns them (no SQLAlchemy result processing: 100k rows of the summary's light columns)."""
    stmt = (select(*(getattr(CaseRecord, name) for name in columns)).where(col(CaseRecord.run_id) == run_id)
            .order_by(col(CaseRecord.position), col(CaseRecord.id)))
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect)
    params = (tuple(compiled.params[k] for k in compiled.positiontup or ()) if compiled.positional
              else compiled.params)
    yield from conn.exec_driver_sql(str(compiled), params)


def prompt_blobs(session: Session, *, run_id: int, hashes: Sequence[str]) -> dict[str, str]:
    if not hashes:
        return {}
    return {h: t for h, t in session.execute(
        sa.select(col(PromptBlob.sha256), col(PromptBlob.text))
        .where(col(PromptBlob.run_id) == run_id, col(PromptBlob.sha256).in_(sorted(set(hashes))))).all()}


def case_filters(*, run_id: int, strategy: str | None = None, endpoint: str | None = None,
                 outcome: str | None = None, question_id: str | None = None, scorer: str | None = None,
                 min_score: float | None = None, max_score: float | None = None) -> list[Any]:
    conds: list[Any] = [col(CaseRecord.run_id) == run_id]
    if strategy is not None:
        conds.append(col(CaseRecord.strategy) == strategy)
    if endpoint is not None:
        conds.append(col(CaseRecord.endpoint) == endpoint)
    if outcome is not None:
        conds.append(col(CaseRecord.outcome) == outcome)
    if question_id is not None:
        conds.append(col(CaseRecord.question_id) == question_id)
    if scorer is not None and (min_score is not None or max_score is not None):
        value = sa.type_coerce(CaseRecord.scores, sa.JSON)[scorer].as_float()
        if min_score is not None:
            conds.append(value >= min_score)
        if max_score is not None:
            conds.append(value <= max_score)
    return conds


def list_cases(session: Session, *, conds: list[Any], offset: int = 0,
               limit: int = 100) -> tuple[list[CaseRecord], int]:
    rows = session.exec(select(CaseRecord).where(*conds).order_by(col(CaseRecord.position), col(CaseRecord.id))
                        .offset(offset).limit(limit)).all()
    count = session.exec(select(func.count()).select_from(CaseRecord).where(*conds)).one()
    return list(rows), count


def get_case(session: Session, *, run_id: int, case_id: str) -> tuple[CaseRecord, CaseDetailRecord | None] | None:
    light = session.exec(select(CaseRecord).where(CaseRecord.run_id == run_id, CaseRecord.case_id == case_id)).first()
    if light is None:
        return None
    return light, session.get(CaseDetailRecord, light.id)


def iter_cases(session: Session, *, run_id: int, with_detail: bool,
               batch: int = 500) -> Iterator[tuple[CaseRecord, CaseDetailRecord | None]]:
    """All cases of a run in plan order, read in batches (keyset on position, id)."""
    last: tuple[int, int] = (-1, -1)
    while True:
        query = select(CaseRecord).where(
            CaseRecord.run_id == run_id,
            sa.tuple_(col(CaseRecord.position), col(CaseRecord.id)) > sa.tuple_(*last),
        ).order_by(col(CaseRecord.position), col(CaseRecord.id)).limit(batch)
        rows = session.exec(query).all()
        if not rows:
            return
        details: dict[int, CaseDetailRecord] = {}
        if with_detail:
            ids = [r.id for r in rows]
            details = {d.case_pk: d for d in session.exec(
                select(CaseDetailRecord).where(col(CaseDetailRecord.case_pk).in_(ids))).all()}
        for r in rows:
            yield r, details.get(_id(r))
        last = (rows[-1].position, _id(rows[-1]))


# ---------------------------------------------------------------------------------------------- cache
def cache_get(session: Session, *, key: str) -> dict[str, Any] | None:
    row = session.get(CachedResponse, key)
    return row.value if row else None


def cache_get_many(session: Session, *, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not keys:
        return {}
    # on the session's connection: the ORM's statement execution is most of a small read's CPU
    rows = session.connection().execute(sa.select(col(CachedResponse.key), col(CachedResponse.value))
                                        .where(col(CachedResponse.key).in_(list(keys)))).all()
    return {k: v for k, v in rows}


def cache_put(session: Session, *, key: str, value: dict[str, Any]) -> None:
    cache_put_many(session, rows=[(key, value)])


def cache_put_many(session: Session, *, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Insert responses; a key already stored keeps its first value."""
    if not rows:
        return
    now = utcnow()
    stmt = _insert(session, _table(CachedResponse)).on_conflict_do_nothing(index_elements=["key"])
    _executemany(session, stmt, [{"key": k, "value": v, "created_at": now} for k, v in rows])


# ------------------------------------------------------------------------------------------ executors
def beat(session: Session, *, executor_id: str, host: str, pid: int, started: bool = False) -> None:
    """Record that the executor is alive now (a new start replaces the row of its predecessor)."""
    now = utcnow()
    values: dict[str, Any] = {"executor_id": executor_id, "host": host, "pid": pid, "last_seen": now,
                              "started_at": now, "stopped": False}
    stmt = _insert(session, ExecutorRecord).values(**values)
    update = {"last_seen": now, "stopped": False, "host": host, "pid": pid}
    if started:
        update["started_at"] = now
    session.execute(stmt.on_conflict_do_update(index_elements=["executor_id"], set_=update))


def mark_stopped(session: Session, *, executor_id: str) -> None:
    session.execute(sa.update(ExecutorRecord).where(col(ExecutorRecord.executor_id) == executor_id)
                    .values(stopped=True, last_seen=utcnow()))


def list_executors(session: Session) -> list[ExecutorRecord]:
    return list(session.exec(select(ExecutorRecord).order_by(col(ExecutorRecord.executor_id))).all())


def forget_executor(session: Session, *, executor_id: str, seen_before: Any) -> bool:
    """Delete a dead executor's row unless it beat again meanwhile; True when this call deleted it."""
    result = session.execute(sa.delete(ExecutorRecord).where(
        col(ExecutorRecord.executor_id) == executor_id,
        sa.or_(col(ExecutorRecord.last_seen) < seen_before, col(ExecutorRecord.stopped).is_(True))))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def find_question(session: Session, *, suite_id: int, question_id: str) -> QuestionRecord | None:
    return session.exec(select(QuestionRecord).where(
        QuestionRecord.suite_id == suite_id, QuestionRecord.question_id == question_id)).first()


def documents_by_id(session: Session, *, suite_id: int, doc_ids: list[str]) -> list[DocumentRecord]:
    return list(session.exec(select(DocumentRecord).where(
        DocumentRecord.suite_id == suite_id, col(DocumentRecord.doc_id).in_(doc_ids))).all())


# --------------------------------------------------------------------------------------------- tokens
def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, *, name: str) -> tuple[ApiToken, str]:
    """A new bearer token; the plain token is returned once and only its sha256 is stored."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(name=name, token_hash=hash_token(plain), prefix=plain[: len(TOKEN_PREFIX) + 6])
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError as e:
        raise ValueError(f"a token named '{name}' exists") from e
    return record, plain


def find_token(session: Session, *, token: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()


def touch_token(session: Session, *, record: ApiToken) -> None:
    record.last_used_at = utcnow()
    session.add(record)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))).all())


def delete_token(session: Session, *, name: str) -> bool:
    result = session.execute(sa.delete(ApiToken).where(col(ApiToken.name) == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _id(record: Any) -> int:
    assert record.id is not None
    return int(record.id)


# ------------------------------------------------------------------------------------------ run views
def run_view_body(session: Session, *, run_id: int, key: str, state: str) -> str | None:
    """The stored view ``key`` of the run, when it was stored in ``state``."""
    body = session.execute(select(RunViewRecord.body).where(
        col(RunViewRecord.run_id) == run_id, col(RunViewRecord.key) == key,
        col(RunViewRecord.state) == state)).scalar()
    return None if body is None else str(body)


def run_view_bodies(session: Session, *, run_ids: Sequence[int], key: str) -> list[tuple[int, str, str]]:
    """``(run_id, state, body)`` of the stored view ``key`` of each of ``run_ids`` that has one."""
    rows = session.execute(select(RunViewRecord.run_id, RunViewRecord.state, RunViewRecord.body).where(
        col(RunViewRecord.run_id).in_(list(run_ids)), col(RunViewRecord.key) == key)).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def replace_run_view(engine: sa.Engine, *, run_id: int, key: str, state: str, body: str) -> None:
    """Replace the stored view in a transaction of its own (a GET's session commits nothing)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(RunViewRecord).where(col(RunViewRecord.run_id) == run_id,
                                                    col(RunViewRecord.key) == key))
        conn.execute(sa.insert(RunViewRecord).values(run_id=run_id, key=key, state=state, body=body))


def delete_run_views(session: Session, *, run_id: int) -> None:
    session.execute(sa.delete(RunViewRecord).where(col(RunViewRecord.run_id) == run_id))
