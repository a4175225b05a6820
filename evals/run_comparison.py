"""Two runs compared: a baseline run against another, per endpoint × strategy.

Groups of the two runs are matched first by equal (endpoint, strategy key); then, of what is left, an
endpoint (or a strategy name) that each run has exactly once is matched with the other's, so
``rag[k=5]`` in the baseline meets ``rag[chunk_tokens=64,k=2]`` in the other run, and a run on endpoint
``qwen`` meets one on ``llama``. Within a matched pair:

* on the questions both scored (same question id): the paired difference other − baseline with its
  paired interval (:func:`evals.stats.paired_difference`: Newcombe for 0/1 scores, BCa otherwise), wins /
  losses / ties, the paired p-value (:func:`evals.stats.paired_p_value`: exact McNemar for 0/1 scores,
  the sign-flip test otherwise) and, over every pair of every run compared, its Holm-adjusted value
  (:func:`adjust_holm`); a case without an answer counts 0 on answer scorers, as in the run summary;
* when the scored questions differ, also the unpaired difference of the two means over all scored
  cases with an independent-samples bootstrap interval (:func:`evals.stats.unpaired_bootstrap`),
  labelled as such;
* the mean cost and latency per case of each side and their differences;
* the questions that changed: *fixed* (baseline < 0.5 ≤ other) and *broken* (the reverse).

Pure: rows in, a model out. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from evals.stats import (
    Estimate,
    holm,
    mcnemar_exact,
    paired_difference,
    paired_p_value,
    percentile,
    unpaired_bootstrap,
)
from evals.summary import CaseRow, _answer_names, _zero_unanswered

CORRECT = 0.5  # a score at or above this counts as a right answer for fixed / broken


class SideStats(BaseModel):
    """One side of a matched pair."""

    endpoint: str = Field(description="endpoint name in its run")
    strategy: str = Field(description="strategy key in its run")
    n_cases: int = Field(description="cases of the group")
    n_scored: int = Field(description="cases with a value of the scorer")
    mean: float | None = Field(description="mean score over the scored cases")
    cost_per_case: float | None = Field(description="mean USD per case with a known cost")
    latency_p50_s: float | None = Field(description="median latency in seconds")
    latency_mean_s: float | None = Field(description="mean latency in seconds")


class ChangedQuestion(BaseModel):
    question_id: str = Field(description="the question's id (the same in both runs)")
    baseline: float = Field(description="its score in the baseline run")
    other: float = Field(description="its score in the other run")


class PairComparison(BaseModel):
    """A group of the other run against the matching group of the baseline."""

    label: str = Field(description="'strategy @ endpoint', or 'baseline → other' when they differ")
    match: str = Field(description="'same': equal endpoint and strategy; 'by name': the only strategy of "
                                   "that name, or the only endpoint, on each side")
    baseline: SideStats
    other: SideStats
    n_paired: int = Field(description="questions both sides scored")
    paired: Estimate | None = Field(description="mean of other − baseline over the paired questions with "
                                                "its paired 95% interval (Newcombe for 0/1, else BCa)")
    wins: int = Field(description="paired questions where the other run scored higher")
    losses: int = Field(description="paired questions where it scored lower")
    ties: int = Field(description="paired questions with equal scores")
    mcnemar_p: float | None = Field(description="exact McNemar p-value on the paired questions, only when "
                                                "every score is 0 or 1")
    p_value: float | None = Field(description="paired p-value: exact McNemar for 0/1 scores, sign-flip "
                                              "randomisation test otherwise")
    p_holm: float | None = Field(default=None, description="p_value Holm-adjusted over every pair of every "
                                                           "run compared with the baseline")
    unpaired: Estimate | None = Field(description="mean(other) − mean(baseline) over all scored cases, "
                                                  "independent-samples bootstrap; set only when the scored "
                                                  "questions differ")
    cost_per_case_delta: float | None = Field(description="other − baseline, USD per case")
    latency_p50_delta_s: float | None = Field(description="other − baseline, median latency in seconds")
    fixed: list[ChangedQuestion] = Field(description=f"wrong in the baseline (< {CORRECT}), right in the other")
    broken: list[ChangedQuestion] = Field(description=f"right in the baseline (≥ {CORRECT}), wrong in the other")


class RunPairComparison(BaseModel):
    """Every matched endpoint × strategy of one run against the baseline run."""

    scorer: str = Field(description="the score compared")
    pairs: list[PairComparison]
    only_in_baseline: list[str] = Field(description="'strategy @ endpoint' groups with no match in the other run")
    only_in_other: list[str] = Field(description="groups of the other run with no match in the baseline")


def _groups(rows: Sequence[CaseRow]) -> dict[tuple[str, str], list[CaseRow]]:
    out: dict[tuple[str, str], list[CaseRow]] = {}
    for r in rows:
        out.setdefault((r.endpoint, r.strategy), []).append(r)
    return out


def _name(rows: list[CaseRow]) -> str:
    return rows[0].strategy_name if rows else ""


def match_groups(base: dict[tuple[str, str], list[CaseRow]], other: dict[tuple[str, str], list[CaseRow]],
                 ) -> list[tuple[tuple[str, str], tuple[str, str], str]]:
    """(baseline key, other key, how) for each matched pair of groups, in the baseline's order."""
    pairs: list[tuple[tuple[str, str], tuple[str, str], str]] = [(k, k, "same") for k in base if k in other]
    left_b = [k for k in base if k not in other]
    left_o = [k for k in other if k not in base]
    # an endpoint each run has exactly once is the same role (e.g. two models compared)
    eps_b = list(dict.fromkeys(k[0] for k in base))
    eps_o = list(dict.fromkeys(k[0] for k in other))
    endpoint_map = {eps_b[0]: eps_o[0]} if len(eps_b) == 1 and len(eps_o) == 1 else {}
    for kb in list(left_b):
        target_ep = kb[0] if kb[0] in eps_o else endpoint_map.get(kb[0])
        if target_ep is None:
            continue
        exact = (target_ep, kb[1])
        if exact in left_o:
            pairs.append((kb, exact, "by name"))
            left_b.remove(kb)
            left_o.remove(exact)
            continue
        same_b = [k for k in left_b if k[0] == kb[0] and _name(base[k]) == _name(base[kb])]
        same_o = [k for k in left_o if k[0] == target_ep and _name(other[k]) == _name(base[kb])]
        if len(same_b) == 1 and len(same_o) == 1:
            pairs.append((kb, same_o[0], "by name"))
            left_b.remove(kb)
            left_o.remove(same_o[0])
    order = {k: i for i, k in enumerate(base)}
    pairs.sort(key=lambda p: order[p[0]])
    return pairs


def _side(key: tuple[str, str], rows: list[CaseRow], scorer: str) -> SideStats:
    scored = [r.scores.get(scorer) for r in rows]
    values = [v for v in scored if v is not None]
    costs = [r.cost_usd for r in rows if r.cost_usd is not None]
    lat = [r.latency_s for r in rows if r.latency_s is not None]
    return SideStats(endpoint=key[0], strategy=key[1], n_cases=len(rows), n_scored=len(values),
                     mean=float(np.mean(values)) if values else None,
                     cost_per_case=float(np.mean(costs)) if costs else None,
                     latency_p50_s=percentile(lat, 50), latency_mean_s=float(np.mean(lat)) if lat else None)


def _by_question(rows: list[CaseRow], scorer: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        v = r.scores.get(scorer)
        if v is not None:
            out.setdefault(r.question_id, float(v))
    return out


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _label(kb: tuple[str, str], ko: tuple[str, str]) -> str:
    if kb == ko:
        return f"{kb[1]} @ {kb[0]}"
    left = f"{kb[1]} @ {kb[0]}"
    right = ko[1] if kb[0] == ko[0] else f"{ko[1]} @ {ko[0]}"
    return f"{left} → {right}"


def compare_pair(kb: tuple[str, str], base: list[CaseRow], ko: tuple[str, str], other: list[CaseRow], *,
                 scorer: str, how: str = "same", n_boot: int = 2000, seed: int = 0) -> PairComparison:
    sb, so = _side(kb, base, scorer), _side(ko, other, scorer)
    qb, qo = _by_question(base, scorer), _by_question(other, scorer)
    shared = [q for q in qb if q in qo]
    xb = [qb[q] for q in shared]
    xo = [qo[q] for q in shared]
    wins = sum(y > x for x, y in zip(xb, xo, strict=True))
    losses = sum(y < x for x, y in zip(xb, xo, strict=True))
    binary = bool(shared) and all(v in (0.0, 1.0) for v in xb + xo)
    same_questions = set(qb) == set(qo)
    return PairComparison(
        label=_label(kb, ko), match=how, baseline=sb, other=so, n_paired=len(shared),
        paired=paired_difference(xb, xo, n_boot=n_boot, seed=seed) if shared else None,
        wins=wins, losses=losses, ties=len(shared) - wins - losses,
        mcnemar_p=mcnemar_exact(losses, wins) if binary else None,
        p_value=paired_p_value(xb, xo, seed=seed) if shared else None,
        unpaired=None if same_questions else unpaired_bootstrap(list(qb.values()), list(qo.values()),
                                                                n_boot=n_boot, seed=seed),
        cost_per_case_delta=_delta(sb.cost_per_case, so.cost_per_case),
        latency_p50_delta_s=_delta(sb.latency_p50_s, so.latency_p50_s),
        fixed=[ChangedQuestion(question_id=q, baseline=qb[q], other=qo[q]) for q in shared
               if qb[q] < CORRECT <= qo[q]],
        broken=[ChangedQuestion(question_id=q, baseline=qb[q], other=qo[q]) for q in shared
                if qo[q] < CORRECT <= qb[q]],
    )


def compare_runs(baseline: Sequence[CaseRow], other: Sequence[CaseRow], *, scorer: str, n_boot: int = 2000,
                 seed: int = 0) -> RunPairComparison:
    """``other`` against ``baseline`` (the case rows of two runs) on ``scorer``."""
    answer = _answer_names([scorer])  # a case without an answer is wrong on answer scorers
    gb, go = _groups(_zero_unanswered(baseline, answer)), _groups(_zero_unanswered(other, answer))
    matched = match_groups(gb, go)
    used_b = Counter(p[0] for p in matched)
    used_o = Counter(p[1] for p in matched)
    return RunPairComparison(
        scorer=scorer,
        pairs=[compare_pair(kb, gb[kb], ko, go[ko], scorer=scorer, how=how, n_boot=n_boot, seed=seed)
               for kb, ko, how in matched],
        only_in_baseline=[f"{k[1]} @ {k[0]}" for k in gb if k not in used_b],
        only_in_other=[f"{k[1]} @ {k[0]}" for k in go if k not in used_o],
    )


def adjust_holm(comparisons: Sequence[RunPairComparison]) -> None:
    """Set ``p_holm`` on every pair of ``comparisons``: Holm's step-down adjustment
    (:func:`evals.stats.holm`) over all their paired p-values together, one family per page."""
    pairs = [p for c in comparisons for p in c.pairs if p.p_value is not None]
    for pair, adjusted in zip(pairs, holm([p.p_value for p in pairs]), strict=True):  # type: ignore[misc]
        pair.p_holm = float(adjusted)
