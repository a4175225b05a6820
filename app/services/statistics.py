"""A run's summary and paired comparisons, computed by the engine from the light case rows only.

A finished run's summary is computed once and stored (``app.services.run_views``); a running run's is
computed from its stored cases, at most once per couple of seconds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from app.models import CaseRecord, RunRecord
from app.services import run_views
from app.services import runs as run_service
from evals import CaseRow, Outcome, PairedComparison, RunSummary, compare, summarize

_NAMES = list(CaseRow.model_fields)
_COLUMNS = [getattr(CaseRecord, name) for name in _NAMES]
_OUTCOMES = {o.value: o for o in Outcome}


_FIELDS_SET = frozenset(_NAMES)
_set = object.__setattr__


def _case_row(values: dict[str, Any]) -> CaseRow:
    """A :class:`CaseRow` from our own table's values, built the way ``model_construct`` builds one but
    without its per-field work: the rows were validated when their results were stored, and building
    100k models through ``model_construct`` cost more than the query itself."""
    row = object.__new__(CaseRow)
    _set(row, "__dict__", values)
    _set(row, "__pydantic_fields_set__", set(_FIELDS_SET))
    _set(row, "__pydantic_extra__", None)
    _set(row, "__pydantic_private__", None)
    return row


def _case_rows_query(run_id: int) -> Any:
    return (select(*_COLUMNS).where(col(CaseRecord.run_id) == run_id)
            .order_by(col(CaseRecord.position), col(CaseRecord.id)))


def case_rows(session: Session, run_id: int) -> list[CaseRow]:
    """Every stored case of the run, in plan order, as :class:`CaseRow` (no prompts or answers). Read as
    the driver returns them, without SQLAlchemy's per-value result processing; scores are parsed here
    (PostgreSQL's driver hands JSON over already parsed)."""
    conn = session.connection()
    stmt = _case_rows_query(run_id).compile(dialect=conn.dialect)
    cursor = conn.exec_driver_sql(str(stmt), tuple(stmt.params[k] for k in stmt.positiontup or ())
                                  if stmt.positional else stmt.params)
    loads = json.loads
    out = []
    for raw in cursor:
        values = dict(zip(_NAMES, raw, strict=True))
        values["outcome"] = _OUTCOMES[values["outcome"]]
        scores = values["scores"]
        values["scores"] = (loads(scores) if isinstance(scores, str) else scores) or {}
        out.append(_case_row(values))
    return out


def _primary(record: RunRecord) -> str | None:
    scorers = record.spec.get("scorers") or []
    return scorers[0] if scorers else None


def primary_scorer(session: Session, run_id: int) -> str | None:
    return _primary(run_service.get_record(session, run_id))


def summary_json(session: Session, run_id: int, *, primary: str | None = None,
                 length_edges: Sequence[int] | None = None, rows: Sequence[CaseRow] | None = None,
                 record: RunRecord | None = None, alpha: float = 0.05, margin: float = 0.02,
                 threshold: float = 0.856) -> bytes:
    """The run's summary as JSON: stored once the run has finished, else computed (``rows`` when the
    caller has read them already)."""
    record = record or run_service.get_record(session, run_id)
    chosen = primary or _primary(record)
    # the edges as summarize uses them (sorted, unique): one stored view however they were written
    edges = sorted(set(length_edges)) if length_edges else []

    def build() -> bytes:
        data = rows if rows is not None else case_rows(session, run_id)
        urls = {e.get("name"): e.get("base_url") for e in record.spec.get("endpoints", [])}
        return summarize(data, primary=chosen, length_edges=length_edges,
                         endpoint_urls={k: v for k, v in urls.items() if k and v},
                         alpha=alpha, margin=margin, threshold=threshold).model_dump_json().encode()

    return run_views.get(session, record, "summary", [chosen, edges, alpha, margin, threshold], build)


def summary(session: Session, run_id: int, *, primary: str | None = None,
            length_edges: Sequence[int] | None = None, rows: Sequence[CaseRow] | None = None,
            record: RunRecord | None = None, alpha: float = 0.05, margin: float = 0.02,
            threshold: float = 0.856) -> RunSummary:
    """The run's summary; ``rows`` when the caller has read them already."""
    return RunSummary.model_validate_json(summary_json(
        session, run_id, primary=primary, length_edges=length_edges, rows=rows, record=record, alpha=alpha,
        margin=margin, threshold=threshold))


def warm_summary(session: Session, run_id: int) -> None:
    """Store a finished run's default summary (what the API and the CLI ask for)."""
    summary_json(session, run_id)


def paired(session: Session, run_id: int, *, a: str, b: str, scorer: str | None = None,
           endpoint: str | None = None, rows: Sequence[CaseRow] | None = None) -> PairedComparison:
    chosen = scorer or primary_scorer(session, run_id)
    if chosen is None:
        from evals import UserInputError

        raise UserInputError("the run has no scorers; name one", field="scorer")
    return compare(rows if rows is not None else case_rows(session, run_id), a, b, scorer=chosen,
                   endpoint=endpoint)
