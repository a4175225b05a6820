"""A run's summary and paired comparisons, computed by the engine from the light case rows only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.models import CaseRecord
from app.services import runs as run_service
from evals.summary import CaseRow, PairedComparison, RunSummary, compare, summarize

_COLUMNS = [getattr(CaseRecord, name) for name in CaseRow.model_fields]


def case_rows(session: Session, run_id: int) -> list[CaseRow]:
    """Every stored case of the run as the engine's :class:`CaseRow`, without prompts or answers."""
    rows = session.execute(select(*_COLUMNS).where(col(CaseRecord.run_id) == run_id)
                           .order_by(col(CaseRecord.position), col(CaseRecord.id))).all()
    names = list(CaseRow.model_fields)
    return [CaseRow.model_validate(dict(zip(names, row, strict=True))) for row in rows]


def primary_scorer(session: Session, run_id: int) -> str | None:
    scorers = run_service.get_record(session, run_id).spec.get("scorers") or []
    return scorers[0] if scorers else None


def summary(session: Session, run_id: int, *, primary: str | None = None,
            length_edges: Sequence[int] | None = None) -> RunSummary:
    default = primary_scorer(session, run_id)
    return summarize(case_rows(session, run_id), primary=primary or default, length_edges=length_edges)


def paired(session: Session, run_id: int, *, a: str, b: str, scorer: str | None = None,
           endpoint: str | None = None) -> PairedComparison:
    chosen = scorer or primary_scorer(session, run_id)
    if chosen is None:
        from evals.errors import UserInputError

        raise UserInputError("the run has no scorers; name one", field="scorer")
    return compare(case_rows(session, run_id), a, b, scorer=chosen, endpoint=endpoint)
