"""Diagnostics over a run's cases: where retrieval strategies go wrong, and how far a judge agrees
with the exact metrics.

Both work on anything with ``endpoint``, ``strategy`` and ``scores`` (a ``CaseRow`` of the summary or a
``CaseResult``), so the summary can include them without loading full cases.

- **Error attribution**: a wrong answer of a retrieval case (primary score < ``threshold``) is
  ``not_retrieved`` when its gold evidence was not all retrieved (``retrieval_recall`` < 1), else
  ``retrieved_wrong``: the evidence was in front of the model and the answer was still wrong.
- **Judge agreement**: Cohen's kappa between the judge's 0/1 verdicts (scores ≥ ``threshold``) and
  ``exact_match`` and ``f1 ≥ 0.5`` on the same cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel

from evals.scorers import is_judge_scorer
from evals.stats import cohen_kappa

RECALL = "retrieval_recall"
Attribution = Literal["correct", "not_retrieved", "retrieved_wrong"]


class HasScores(Protocol):
    endpoint: str
    strategy: str
    scores: dict[str, float | None]


def attribute(score: float | None, recall: float | None, threshold: float = 0.5) -> Attribution | None:
    """The attribution of one case; None when it has no answer score or no evidence recall."""
    if score is None or recall is None:
        return None
    if score >= threshold:
        return "correct"
    return "retrieved_wrong" if recall >= 1.0 else "not_retrieved"


def primary_answer_scorer(names: Sequence[str]) -> str | None:
    """The first scorer that grades the answer's correctness (not the retrieval, not faithfulness):
    the one attribution uses."""
    from evals.errors import UserInputError
    from evals.scorers import get_scorer

    def grades(name: str) -> bool:
        try:
            return get_scorer(name).grades_answer
        except UserInputError:  # a stored run's scorer that is no longer installed
            return False

    return next((n for n in names if grades(n)), None)


class AttributionRow(BaseModel):
    """Wrong answers of one endpoint × strategy split by cause; ``n`` cases had both scores."""

    endpoint: str
    strategy: str
    scorer: str
    n: int
    correct: int
    wrong: int
    not_retrieved: int
    retrieved_wrong: int
    not_retrieved_share: float | None  # of the wrong answers


def error_attribution(rows: Sequence[HasScores], *, scorer: str | None = None,
                      threshold: float = 0.5) -> list[AttributionRow]:
    """Per endpoint × strategy, wrong answers split into evidence not retrieved vs retrieved but
    answered wrong. ``scorer`` defaults to the first answer score found in the rows."""
    if scorer is None:
        names: dict[str, None] = {}
        for r in rows:
            names.update(dict.fromkeys(r.scores))
        scorer = primary_answer_scorer(list(names))
    if scorer is None:
        return []
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        label = attribute(r.scores.get(scorer), r.scores.get(RECALL), threshold)
        if label is None:
            continue
        counts = groups.setdefault((r.endpoint, r.strategy), {"correct": 0, "not_retrieved": 0,
                                                               "retrieved_wrong": 0})
        counts[label] += 1
    out = []
    for (endpoint, strategy), c in groups.items():
        wrong = c["not_retrieved"] + c["retrieved_wrong"]
        out.append(AttributionRow(endpoint=endpoint, strategy=strategy, scorer=scorer,
                                  n=wrong + c["correct"], correct=c["correct"], wrong=wrong,
                                  not_retrieved=c["not_retrieved"], retrieved_wrong=c["retrieved_wrong"],
                                  not_retrieved_share=c["not_retrieved"] / wrong if wrong else None))
    return out


class JudgeAgreement(BaseModel):
    """A judge scorer against an exact metric on the cases both scored."""

    judge: str
    versus: str  # "exact_match" or "f1>=0.5"
    n: int
    kappa: float | None
    agreement: float | None  # share of cases where the two labels are equal
    both_correct: int
    judge_only: int  # the judge said correct, the metric wrong
    metric_only: int
    both_wrong: int


def _label(value: float | None, threshold: float) -> int | None:
    return None if value is None else int(value >= threshold)


def judge_agreement(rows: Sequence[HasScores], *, threshold: float = 0.5,
                    versus: Mapping[str, tuple[str, float]] | None = None) -> list[JudgeAgreement]:
    """Cohen's kappa of every judge scorer in the rows against ``exact_match`` and ``f1 ≥ 0.5``
    (``versus``: label → (scorer, threshold))."""
    versus = versus or {"exact_match": ("exact_match", 1.0), "f1>=0.5": ("f1", 0.5)}
    judges: dict[str, None] = {}
    for r in rows:
        judges.update({n: None for n in r.scores if is_judge_scorer(n)})
    out = []
    for judge in judges:
        for label, (metric, cut) in versus.items():
            pairs = [(j, m) for r in rows
                     if (j := _label(r.scores.get(judge), threshold)) is not None
                     and (m := _label(r.scores.get(metric), cut)) is not None]
            a = [p[0] for p in pairs]
            b = [p[1] for p in pairs]
            n = len(pairs)
            out.append(JudgeAgreement(
                judge=judge, versus=label, n=n, kappa=cohen_kappa(a, b) if n else None,
                agreement=sum(x == y for x, y in pairs) / n if n else None,
                both_correct=sum(x == 1 and y == 1 for x, y in pairs),
                judge_only=sum(x == 1 and y == 0 for x, y in pairs),
                metric_only=sum(x == 0 and y == 1 for x, y in pairs),
                both_wrong=sum(x == 0 and y == 0 for x, y in pairs)))
    return out
