"""A run's summary and paired comparisons, computed by the engine from the light case rows only.

A finished run's stored cases no longer change, so its summaries are kept (a few runs' worth, keyed by
everything that would change them: attempt, status, finish time, primary score, length edges)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from threading import Lock

from sqlmodel import Session, col, select

from app.models import ACTIVE_STATUSES, CaseRecord, RunRecord
from app.schemas import RunAgainstBaseline, RunBrief, RunsComparison
from app.services import runs as run_service
from evals import CaseRow, Outcome, PairedComparison, RunSummary, adjust_holm, compare, summarize
from evals import compare_runs as compare_runs_rows

_NAMES = list(CaseRow.model_fields)
_COLUMNS = [getattr(CaseRecord, name) for name in _NAMES]
SUMMARY_CACHE_SIZE = 16
_summaries: OrderedDict[Hashable, RunSummary] = OrderedDict()
_summaries_lock = Lock()
_comparisons: OrderedDict[Hashable, RunsComparison] = OrderedDict()  # finished runs' comparisons


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


MAX_COMPARED_RUNS = 10


def _brief(record: RunRecord, n_cases: int) -> RunBrief:
    return RunBrief(id=record.id or 0, name=record.name, status=record.status, suite_id=record.suite_id,
                    suite_name=record.spec.get("suite_name") or "", suite_hash=record.spec.get("suite_hash") or "",
                    n_cases=n_cases)


def compare_runs(session: Session, run_ids: Sequence[int], *, baseline: int | None = None,
                 scorer: str | None = None) -> RunsComparison:
    """Every run of ``run_ids`` against ``baseline`` (default: the first), per endpoint × strategy."""
    from evals import UserInputError

    ids = list(dict.fromkeys(run_ids))
    if baseline is not None and baseline not in ids:
        ids.insert(0, baseline)
    if len(ids) < 2:
        raise UserInputError("choose at least two different runs to compare", field="runs")
    if len(ids) > MAX_COMPARED_RUNS:
        raise UserInputError(f"compare at most {MAX_COMPARED_RUNS} runs at once", field="runs")
    base_id = baseline if baseline is not None else ids[0]
    records = {i: run_service.get_record(session, i) for i in ids}
    chosen = scorer or _primary(records[base_id])
    if chosen is None:
        raise UserInputError(f"run {base_id} has no scorers; name one", field="scorer")
    for i, record in records.items():
        if chosen not in (record.spec.get("scorers") or []):
            raise UserInputError(f"run {i} was not scored with '{chosen}'; its scorers: "
                                 f"{', '.join(record.spec.get('scorers') or []) or 'none'}", field="scorer")
    key: Hashable | None = None
    if all(r.status not in ACTIVE_STATUSES for r in records.values()):  # finished runs no longer change
        key = ("compare", base_id, chosen, tuple((i, records[i].name, records[i].created_at, records[i].attempt,
                                                 records[i].status,
                                                 records[i].finished_at) for i in ids))
        with _summaries_lock:
            if key in _comparisons:
                _comparisons.move_to_end(key)
                return _comparisons[key]
    result = _compare_runs(session, ids, records, base_id, chosen)
    if key is not None:
        with _summaries_lock:
            _comparisons[key] = result
            while len(_comparisons) > SUMMARY_CACHE_SIZE:
                _comparisons.popitem(last=False)
    return result


def _compare_runs(session: Session, ids: list[int], records: dict[int, RunRecord], base_id: int,
                  chosen: str) -> RunsComparison:
    rows = {i: case_rows(session, i) for i in ids}
    base = records[base_id]
    out = []
    for i in ids:
        if i == base_id:
            continue
        record = records[i]
        same = record.spec.get("suite_hash") == base.spec.get("suite_hash")
        notes = []
        if not same:
            notes.append(f"the runs used different suites ({base.spec.get('suite_name')} and "
                         f"{record.spec.get('suite_name')}): questions are paired by id where both have it")
        for r in (base, record):
            if r.status in ACTIVE_STATUSES:
                notes.append(f"run {r.id} is still {r.status}: its numbers cover the cases stored so far")
        out.append(RunAgainstBaseline(run=_brief(record, len(rows[i])), same_suite=same, notes=notes,
                                      comparison=compare_runs_rows(rows[base_id], rows[i], scorer=chosen)))
    adjust_holm([item.comparison for item in out])
    return RunsComparison(baseline=_brief(base, len(rows[base_id])), scorer=chosen, runs=out)
