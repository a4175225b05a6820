"""A run's summary and paired comparisons, computed by the engine from the light case rows only.

A finished run's summary is computed once and stored (``app.services.run_views``); a running run's is
computed from its stored cases, at most once per couple of seconds."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from threading import Lock
from typing import Any

from sqlmodel import Session

from app import crud
from app.models import ACTIVE_STATUSES, RunRecord
from app.schemas import RunAgainstBaseline, RunBrief, RunsComparison
from app.services import run_views
from app.services import runs as run_service
from evals import CaseRow, Outcome, PairedComparison, RunSummary, adjust_holm, compare, summarize
from evals import compare_runs as compare_runs_rows

_NAMES = list(CaseRow.model_fields)
_OUTCOMES = {o.value: o for o in Outcome}
COMPARISON_CACHE_SIZE = 16
_comparisons: OrderedDict[Hashable, RunsComparison] = OrderedDict()  # finished runs' comparisons
_comparisons_lock = Lock()


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


def case_rows(session: Session, run_id: int) -> list[CaseRow]:
    """Every stored case of the run, in plan order, as :class:`CaseRow` (no prompts or answers). Read as
    the driver returns them, without SQLAlchemy's per-value result processing; scores are parsed here
    (PostgreSQL's driver hands JSON over already parsed)."""
    loads = json.loads
    out = []
    for raw in crud.case_row_values(session, run_id=run_id, columns=_NAMES):
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
        with _comparisons_lock:
            if key in _comparisons:
                _comparisons.move_to_end(key)
                return _comparisons[key]
    result = _compare_runs(session, ids, records, base_id, chosen)
    if key is not None:
        with _comparisons_lock:
            _comparisons[key] = result
            while len(_comparisons) > COMPARISON_CACHE_SIZE:
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
