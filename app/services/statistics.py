"""A run's summary and paired comparisons, computed by the engine from the light case rows only.

A finished run's summary is computed once and stored (``app.services.run_views``); a running run's is
computed from its stored cases, at most once per couple of seconds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from sqlmodel import Session, col, select

from app.models import CaseRecord, RunRecord
from app.services import run_views
from app.services import runs as run_service
from evals.domain import Outcome
from evals.summary import CaseRow, PairedComparison, RunSummary, compare, summarize

_NAMES = list(CaseRow.model_fields)
_COLUMNS = [getattr(CaseRecord, name) for name in _NAMES]
_OUTCOMES = {o.value: o for o in Outcome}


class LightCaseRow:
    """A :class:`CaseRow` read back from our own table: the same attributes, without pydantic.

    The rows were validated when their results were stored, and building 100k pydantic models (even
    unvalidated) cost more than the query itself."""

    __slots__ = tuple(_NAMES)

    def __init__(self, values: Sequence[Any]) -> None:
        for name, value in zip(_NAMES, values, strict=True):
            setattr(self, name, value)

    def as_case_row(self) -> CaseRow:
        return CaseRow.model_construct(**{name: getattr(self, name) for name in _NAMES})


def _case_rows_query(run_id: int) -> Any:
    return (select(*_COLUMNS).where(col(CaseRecord.run_id) == run_id)
            .order_by(col(CaseRecord.position), col(CaseRecord.id)))


def case_rows(session: Session, run_id: int) -> list[CaseRow]:
    """Every stored case of the run, in plan order, as light rows with :class:`CaseRow`'s attributes
    (no prompts or answers). Read as the driver returns them, without SQLAlchemy's per-value result
    processing; scores are parsed here (PostgreSQL's driver hands JSON over already parsed)."""
    conn = session.connection()
    stmt = _case_rows_query(run_id).compile(dialect=conn.dialect)
    cursor = conn.exec_driver_sql(str(stmt), tuple(stmt.params[k] for k in stmt.positiontup or ())
                                  if stmt.positional else stmt.params)
    i_outcome, i_scores = _NAMES.index("outcome"), _NAMES.index("scores")
    loads = json.loads
    out = []
    for raw in cursor:
        values = list(raw)
        values[i_outcome] = _OUTCOMES[values[i_outcome]]
        scores = values[i_scores]
        values[i_scores] = (loads(scores) if isinstance(scores, str) else scores) or {}
        out.append(LightCaseRow(values))
    return cast(list[CaseRow], out)


def _primary(record: RunRecord) -> str | None:
    scorers = record.spec.get("scorers") or []
    return scorers[0] if scorers else None


def primary_scorer(session: Session, run_id: int) -> str | None:
    return _primary(run_service.get_record(session, run_id))


def summary_json(session: Session, run_id: int, *, primary: str | None = None,
                 length_edges: Sequence[int] | None = None,
                 rows: Sequence[CaseRow] | None = None, record: RunRecord | None = None) -> bytes:
    """The run's summary as JSON: stored once the run has finished, else computed (``rows`` when the
    caller has read them already)."""
    record = record or run_service.get_record(session, run_id)
    chosen = primary or _primary(record)
    edges = sorted(set(length_edges)) if length_edges else []

    def build() -> bytes:
        data = rows if rows is not None else case_rows(session, run_id)
        return summarize(data, primary=chosen, length_edges=edges or None).model_dump_json().encode()

    return run_views.get(session, record, "summary", [chosen, edges], build)


def summary(session: Session, run_id: int, *, primary: str | None = None,
            length_edges: Sequence[int] | None = None, rows: Sequence[CaseRow] | None = None,
            record: RunRecord | None = None) -> RunSummary:
    """The run's summary; ``rows`` when the caller has read them already."""
    return RunSummary.model_validate_json(summary_json(session, run_id, primary=primary, length_edges=length_edges,
                                                       rows=rows, record=record))


def warm_summary(session: Session, run_id: int) -> None:
    """Store a finished run's default summary (what the API and the CLI ask for)."""
    summary_json(session, run_id)


def paired(session: Session, run_id: int, *, a: str, b: str, scorer: str | None = None,
           endpoint: str | None = None, rows: Sequence[CaseRow] | None = None) -> PairedComparison:
    chosen = scorer or primary_scorer(session, run_id)
    if chosen is None:
        from evals.errors import UserInputError

        raise UserInputError("the run has no scorers; name one", field="scorer")
    return compare(rows if rows is not None else case_rows(session, run_id), a, b, scorer=chosen,
                   endpoint=endpoint)
