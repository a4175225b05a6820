"""A run's summary and paired comparisons, computed by the engine from the light case rows only.

A finished run's stored cases no longer change, so its summaries are kept (a few runs' worth, keyed by
everything that would change them: attempt, status, finish time, primary score, length edges)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from threading import Lock

from sqlmodel import Session, col, select

from app.models import ACTIVE_STATUSES, CaseRecord, RunRecord
from app.services import runs as run_service
from evals import CaseRow, Outcome, PairedComparison, RunSummary, compare, summarize

_NAMES = list(CaseRow.model_fields)
_COLUMNS = [getattr(CaseRecord, name) for name in _NAMES]
SUMMARY_CACHE_SIZE = 16
_summaries: OrderedDict[Hashable, RunSummary] = OrderedDict()
_summaries_lock = Lock()


def case_rows(session: Session, run_id: int) -> list[CaseRow]:
    """Every stored case of the run as the engine's :class:`CaseRow`, without prompts or answers.

    Rows come from our own table, written from validated results, so they are built without validating
    each again (that cost more than the query at 100k cases); only the outcome is turned back into its enum."""
    rows = session.execute(select(*_COLUMNS).where(col(CaseRecord.run_id) == run_id)
                           .order_by(col(CaseRecord.position), col(CaseRecord.id))).all()
    out = []
    for row in rows:
        data = dict(zip(_NAMES, row, strict=True))
        data["outcome"] = Outcome(data["outcome"])
        data["scores"] = data["scores"] or {}
        out.append(CaseRow.model_construct(**data))
    return out


def _primary(record: RunRecord) -> str | None:
    scorers = record.spec.get("scorers") or []
    return scorers[0] if scorers else None


def primary_scorer(session: Session, run_id: int) -> str | None:
    return _primary(run_service.get_record(session, run_id))


def summary(session: Session, run_id: int, *, primary: str | None = None,
            length_edges: Sequence[int] | None = None, rows: list[CaseRow] | None = None,
            alpha: float = 0.05, margin: float = 0.02, threshold: float = 0.856) -> RunSummary:
    """The run's summary; ``rows`` when the caller has read them already."""
    record = run_service.get_record(session, run_id)
    chosen = primary or _primary(record)
    key: Hashable | None = None
    if record.status not in ACTIVE_STATUSES:
        key = (run_id, record.created_at, record.attempt, record.status, record.finished_at, chosen,
               tuple(length_edges or ()), alpha, margin, threshold)
        with _summaries_lock:
            if key in _summaries:
                _summaries.move_to_end(key)
                return _summaries[key]
    urls = {e.get("name"): e.get("base_url") for e in record.spec.get("endpoints", [])}
    result = summarize(rows if rows is not None else case_rows(session, run_id), primary=chosen,
                       length_edges=length_edges, endpoint_urls={k: v for k, v in urls.items() if k and v},
                       alpha=alpha, margin=margin, threshold=threshold)
    if key is not None:
        with _summaries_lock:
            _summaries[key] = result
            while len(_summaries) > SUMMARY_CACHE_SIZE:
                _summaries.popitem(last=False)
    return result


def paired(session: Session, run_id: int, *, a: str, b: str, scorer: str | None = None,
           endpoint: str | None = None, rows: list[CaseRow] | None = None) -> PairedComparison:
    chosen = scorer or primary_scorer(session, run_id)
    if chosen is None:
        from evals import UserInputError

        raise UserInputError("the run has no scorers; name one", field="scorer")
    return compare(rows if rows is not None else case_rows(session, run_id), a, b, scorer=chosen,
                   endpoint=endpoint)
