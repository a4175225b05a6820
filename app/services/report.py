"""What a run's report shows beyond the summary and comparison of ``app.services.statistics``: the
default pair to compare, retrieval hits against answer scores, the questions two strategies disagree
on, and one question's cases side by side with their retrieved chunks and evidence.

Definitions of the figures: ``docs/metrics.md`` (summary) and ``docs/dashboard.md`` (charts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from app import crud
from app.errors import NotFoundError
from app.models import RunRecord
from app.services import cases as case_service
from app.services import runs as run_service
from evals import CaseResult, CaseRow, Evidence, PairedComparison, Question, RetrievedChunk, RunSpec, registry

RECALL_SCORER = "retrieval_recall"


def default_pair(spec: RunSpec) -> tuple[str, str] | None:
    """The comparison a report opens with: the baseline strategy (long context) against the first other
    strategy that is not a control (``no_context``), else the first two strategies."""
    keys = [s.key for s in spec.strategies]
    if len(keys) < 2:
        return None

    def flag(name: str, key: str) -> bool:
        comp = registry.find("strategy", name)
        return comp is not None and bool(comp.extra.get(key))

    base = next((s.key for s in spec.strategies if flag(s.name, "baseline")), keys[0])
    other = next((s.key for s in spec.strategies if s.key != base and not flag(s.name, "control")), None)
    other = other or next(k for k in keys if k != base)
    return base, other


# -------------------------------------------------------------------------------- retrieval vs answer
class RecallSplit(BaseModel):
    """For one endpoint × retrieval strategy: how often every gold evidence item was retrieved, and the
    mean answer score on the cases where it was (``hit``) and where some was missed (``miss``)."""

    endpoint: str
    strategy: str
    scorer: str
    n: int  # cases with both a retrieval_recall and an answer score
    hit_rate: float | None
    hit_n: int
    hit_score: float | None
    miss_n: int
    miss_score: float | None


def recall_vs_answer(rows: list[CaseRow], scorer: str | None) -> list[RecallSplit]:
    if not scorer or scorer == RECALL_SCORER:
        return []
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in rows:
        recall, score = r.scores.get(RECALL_SCORER), r.scores.get(scorer)
        if recall is None:
            continue
        pairs = groups.setdefault((r.endpoint, r.strategy), [])
        if score is not None:
            pairs.append((recall, score))
    out = []
    for (endpoint, strategy), pairs in groups.items():
        hits = [s for rec, s in pairs if rec >= 1.0]
        misses = [s for rec, s in pairs if rec < 1.0]
        out.append(RecallSplit(
            endpoint=endpoint, strategy=strategy, scorer=scorer, n=len(pairs),
            hit_rate=len(hits) / len(pairs) if pairs else None, hit_n=len(hits),
            hit_score=sum(hits) / len(hits) if hits else None, miss_n=len(misses),
            miss_score=sum(misses) / len(misses) if misses else None))
    return out


# ------------------------------------------------------------------------------------ question view
@dataclass
class Segment:
    text: str
    evidence: bool


@dataclass
class ChunkView:
    chunk: RetrievedChunk
    segments: list[Segment]


@dataclass
class CaseView:
    result: CaseResult
    chunks: list[ChunkView]


@dataclass
class QuestionView:
    run: RunRecord
    question: Question
    cases: list[CaseView]
    depth: float | None
    context_tokens: int | None
    evidence_text: list[tuple[Evidence, str]] = field(default_factory=list)


def highlight(chunk: RetrievedChunk, evidence: list[Evidence]) -> list[Segment]:
    """The chunk's text cut into pieces inside and outside gold evidence spans (character offsets of
    the document; an evidence item without a span marks its whole document). The text is the document
    slice from ``chunk.start``, trailing whitespace stripped."""
    text = chunk.text
    if len(text) > chunk.end - chunk.start:  # not a (whitespace-stripped) document slice: mark it whole
        return [Segment(text, chunk.gold)]
    marks = [False] * len(text)
    for ev in evidence:
        if ev.doc_id != chunk.doc_id:
            continue
        lo = 0 if ev.start is None else max(ev.start - chunk.start, 0)
        hi = len(text) if ev.end is None else min(ev.end - chunk.start, len(text))
        for i in range(lo, max(hi, lo)):
            marks[i] = True
    segments: list[Segment] = []
    for ch, mark in zip(text, marks, strict=True):
        if segments and segments[-1].evidence == mark:
            segments[-1].text += ch
        else:
            segments.append(Segment(ch, mark))
    return segments


def _question(session: Session, suite_id: int, question_id: str) -> Question:
    record = crud.find_question(session, suite_id=suite_id, question_id=question_id)
    if record is None:
        raise NotFoundError(f"question '{question_id}' not found in the run's suite", field="question_id")
    return Question.model_validate(record.body)


def _evidence_text(session: Session, suite_id: int, question: Question, limit: int = 600) -> list[tuple[Evidence, str]]:
    ids = list(dict.fromkeys(ev.doc_id for ev in question.evidence))
    if not ids:
        return []
    docs = {d.doc_id: d.body.get("text", "") for d in crud.documents_by_id(session, suite_id=suite_id, doc_ids=ids)}
    out = []
    for ev in question.evidence:
        text = docs.get(ev.doc_id, "")
        snippet = text[ev.start:ev.end] if ev.start is not None and ev.end is not None else text
        out.append((ev, snippet[:limit] + ("…" if len(snippet) > limit else "")))
    return out


def question_view(session: Session, run_id: int, question_id: str) -> QuestionView:
    """One question of a run with every endpoint × strategy case of it, full detail, in plan order."""
    run = run_service.get_record(session, run_id)
    question = _question(session, run.suite_id, question_id)
    lights, _ = crud.list_cases(session, conds=crud.case_filters(run_id=run_id, question_id=question_id),
                                limit=10_000)
    cases = []
    for light in lights:
        result = case_service.get_result(session, run_id=run_id, case_id=light.case_id)
        chunks = [ChunkView(c, highlight(c, question.evidence)) for c in result.retrieved]
        cases.append(CaseView(result, chunks))
    depth = next((c.result.depth for c in cases if c.result.depth is not None), question.metadata.get("depth"))
    tokens = next((c.result.context_tokens for c in cases if c.result.context_tokens is not None), None)
    return QuestionView(run=run, question=question, cases=cases,
                        depth=float(depth) if depth is not None else None, context_tokens=tokens,
                        evidence_text=_evidence_text(session, run.suite_id, question))


def disagreement_rows(session: Session, run_id: int, comparison: PairedComparison) -> list[dict[str, Any]]:
    """The two strategies' scores on each question they disagree on."""
    wanted = set(comparison.disagreements)
    table: dict[str, dict[str, Any]] = {}
    for light, _ in crud.iter_cases(session, run_id=run_id, with_detail=False):
        if light.question_id not in wanted or light.strategy not in (comparison.a, comparison.b):
            continue
        if comparison.endpoints and light.endpoint not in comparison.endpoints:
            continue
        row = table.setdefault(light.question_id, {"question_id": light.question_id, "a": [], "b": []})
        side = "a" if light.strategy == comparison.a else "b"
        row[side].append({"endpoint": light.endpoint, "score": (light.scores or {}).get(comparison.scorer),
                          "outcome": light.outcome})
    return [table[q] for q in comparison.disagreements if q in table]
