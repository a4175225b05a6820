"""The run summary every surface shows (CLI table, REST API, dashboard), and paired comparisons.

Both work on light ``CaseRow`` records, not full case results, so a run of 100k cases summarises in
seconds. Every figure carries the number of cases behind it. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from contextvars import ContextVar

import numpy as np
from pydantic import BaseModel, Field

from evals.diagnostics import AttributionRow, JudgeAgreement, error_attribution, judge_agreement
from evals.domain import UNANSWERED, CaseResult, Outcome
from evals.errors import UserInputError
from evals.scorers import SCORERS, is_judge_scorer
from evals.stats import (
    RULER_THRESHOLD,
    Estimate,
    crossover_bootstrap,
    crossover_index,
    effective_length,
    holm,
    mcnemar_exact,
    mean_ci,
    non_inferiority,
    paired_difference,
    paired_p_value,
    percentile,
)

LONG_CONTEXT = "long_context"
NO_CONTEXT = "no_context"


class CaseRow(BaseModel):
    """What a summary needs of one case."""

    case_id: str
    question_id: str
    endpoint: str
    strategy: str
    strategy_name: str
    outcome: Outcome = Outcome.ok
    error_class: str | None = None
    error_message: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    context_tokens: int | None = None
    depth: float | None = None
    route: str | None = None

    @property
    def answered(self) -> bool:
        return self.outcome not in UNANSWERED

    @classmethod
    def from_result(cls, r: CaseResult) -> CaseRow:
        return cls(case_id=r.case_id, question_id=r.question_id, endpoint=r.endpoint, strategy=r.strategy,
                   strategy_name=r.strategy_name, outcome=r.outcome, error_class=r.error_class,
                   error_message=r.error_message, scores=dict(r.scores), prompt_tokens=r.usage.prompt_tokens,
                   cached_tokens=r.usage.cached_tokens, completion_tokens=r.usage.completion_tokens,
                   cost_usd=r.cost_usd, latency_s=r.latency_s, ttft_s=r.ttft_s,
                   context_tokens=r.context_tokens, depth=r.depth, route=r.route)


# ------------------------------------------------------------------------------------------ models
class Total(BaseModel):
    """Sum and mean over the ``n`` cases that report a value; ``unknown`` cases did not say."""

    sum: float
    mean: float | None
    n: int
    unknown: int


class Spread(BaseModel):
    p50: float | None
    p95: float | None
    n: int


class Routes(BaseModel):
    """Where a routing strategy sent its cases; ``long_context_share`` = routed to long context / n."""

    counts: dict[str, int]
    long_context_share: float | None
    n: int


class EffectiveLength(BaseModel):
    """RULER's effective context length on the primary scorer: the longest length bucket up to which
    the score stays at or above ``threshold``; ``low``/``high`` from the buckets' interval bounds."""

    scorer: str
    threshold: float
    length: int | None
    low: int | None
    high: int | None
    n_buckets: int


class GroupSummary(BaseModel):
    """One endpoint × strategy. ``scores`` are over every case (a case without an answer scores 0);
    ``scores_answered`` over the answered cases only."""

    endpoint: str
    strategy: str
    strategy_name: str
    n: int
    scores: dict[str, Estimate]
    outcomes: dict[str, int]
    answered: int = 0
    unanswered: dict[str, int] = Field(default_factory=dict)  # reason (outcome) → cases
    unanswered_share: float | None = None
    scores_answered: dict[str, Estimate] = Field(default_factory=dict)
    effective_length: EffectiveLength | None = None
    prompt_tokens: Total
    cached_tokens: Total
    completion_tokens: Total
    cost_usd: Total
    token_share: float | None = None  # mean prompt tokens / those of ``token_share_versus``
    token_share_versus: str | None = None
    latency_s: Spread
    ttft_s: Spread
    routes: Routes | None = None


class LengthBucket(BaseModel):
    """Context lengths in (lo, hi]; ``hi`` is None for the open bucket above the last edge."""

    lo: int
    hi: int | None
    label: str


class LengthCell(BaseModel):
    endpoint: str
    strategy: str
    bucket: LengthBucket
    n: int
    scores: dict[str, Estimate]


class CellMean(BaseModel):
    mean: float | None
    n: int


class GridCell(BaseModel):
    """One depth × length cell of a heatmap."""

    endpoint: str
    strategy: str
    bucket: LengthBucket
    depth: float
    n: int
    scores: dict[str, CellMean]


class BucketTest(BaseModel):
    """``strategy`` against ``versus`` in one length bucket, on the questions both have."""

    bucket: LengthBucket
    n: int
    difference: Estimate  # mean of strategy − versus
    p_value: float
    p_adjusted: float | None = None  # Holm, across every test of the run summary


class Crossover(BaseModel):
    """The first length bucket where ``strategy`` is significantly better than ``versus`` (Holm-adjusted
    p < alpha) and not significantly worse at any longer bucket; ``bucket`` None: no evidence of a
    crossover. ``interval_low``/``interval_high``: where the crossover lies when the questions are
    resampled (None for the high end: no crossover in at least that share of resamples)."""

    endpoint: str
    strategy: str
    versus: str
    scorer: str
    bucket: LengthBucket | None
    length: int | None
    n_buckets: int
    tests: list[BucketTest] = Field(default_factory=list)
    interval_low: LengthBucket | None = None
    interval_high: LengthBucket | None = None
    no_crossover_share: float | None = None
    verdict: str = ""


class Comparison(BaseModel):
    """A group against the run's best group on the primary scorer, on the questions both have."""

    endpoint: str
    strategy: str
    versus_endpoint: str
    versus: str
    scorer: str
    n: int
    difference: Estimate  # mean of this group − the best
    p_value: float
    p_adjusted: float | None = None
    test: str  # mcnemar_exact | sign_flip


class ErrorClassCount(BaseModel):
    error_class: str
    count: int
    example: str | None = None
    endpoints: list[str] = Field(default_factory=list)  # endpoint names whose cases had it


class RunHealth(BaseModel):
    """How the run went: ``status`` is ``failed`` when no case got an answer, ``completed_with_errors``
    when some cases errored, else ``completed``; ``reason`` says why in one line."""

    n: int
    answered: int
    errors: int  # outcome error or judge_error
    error_share: float | None
    unanswered: dict[str, int]
    top_errors: list[ErrorClassCount]
    status: str
    reason: str | None = None


class Candidate(BaseModel):
    endpoint: str
    strategy: str
    n: int
    mean: float | None
    cost: float | None  # mean per question, in ``cost_basis`` units
    latency_p50: float | None
    cost_ratio: float | None = None  # to the best
    latency_ratio: float | None = None
    verdict: str = ""  # best | within | worse | undecided | costlier
    difference: Estimate | None = None  # mean of this − the best, interval at level 1 − 2α
    more_questions: int | None = None


class RecommendationScope(BaseModel):
    """The verdict for one scope: every question (``bucket`` None) or one length bucket."""

    bucket: LengthBucket | None
    n_questions: int
    best: Candidate | None
    pick: Candidate | None
    outcome: str  # cheaper_within_margin | best_is_cheapest | nothing_within_margin | too_few_data | no_data
    more_questions: int | None = None
    sentence: str
    candidates: list[Candidate] = Field(default_factory=list)


class Recommendation(BaseModel):
    """The cheapest strategy whose primary score is not worse than the best's by more than ``margin``
    (one-sided non-inferiority test at ``alpha``), overall and per length bucket."""

    scorer: str | None
    margin: float
    alpha: float
    cost_basis: str  # cost_usd | prompt_tokens
    sentence: str
    overall: RecommendationScope | None
    by_length: list[RecommendationScope] = Field(default_factory=list)


class RunSummary(BaseModel):
    primary: str | None
    scorers: list[str]
    n: int
    groups: list[GroupSummary]
    by_length: list[LengthCell]
    grid: list[GridCell]
    crossovers: list[Crossover]
    alpha: float = 0.05
    health: RunHealth | None = None
    recommendation: Recommendation | None = None
    comparisons: list[Comparison] = Field(default_factory=list)
    # wrong answers of retrieval strategies split by cause (cases with gold evidence only)
    attribution: list[AttributionRow] = Field(default_factory=list)
    # each llm_judge scorer against exact_match and f1 ≥ 0.5 (cases both scored only)
    judge_agreement: list[JudgeAgreement] = Field(default_factory=list)


class PairedComparison(BaseModel):
    """Strategy ``b`` against ``a`` on the questions both scored, paired within an endpoint."""

    a: str
    b: str
    scorer: str
    endpoints: list[str]
    n: int
    mean_a: float | None
    mean_b: float | None
    difference: Estimate  # mean of b − a
    wins: int  # b scored higher
    losses: int
    ties: int
    mcnemar_p: float | None  # exact McNemar, only when every score is 0 or 1
    p_value: float | None = None  # McNemar for 0/1 scores, sign-flip test otherwise
    disagreements: list[str]  # question ids where the two scores differ


# ----------------------------------------------------------------------------------------- helpers
def _total(values: Iterable[float | None]) -> Total:
    vals = list(values)
    known = [v for v in vals if v is not None]
    s = float(sum(known))
    return Total(sum=s, mean=s / len(known) if known else None, n=len(known), unknown=len(vals) - len(known))


def _spread(values: Iterable[float | None]) -> Spread:
    known = [v for v in values if v is not None]
    return Spread(p50=percentile(known, 50), p95=percentile(known, 95), n=len(known))


def _estimates(rows: Sequence[CaseRow], scorers: Sequence[str], n_boot: int, seed: int) -> dict[str, Estimate]:
    out = {}
    for name in scorers:
        vals = [v for r in rows if (v := r.scores.get(name)) is not None]
        out[name] = mean_ci(vals, n_boot=n_boot, seed=seed)
    return out


def _fmt(x: int) -> str:
    for size, unit in ((1 << 20, "M"), (1 << 10, "K")):
        if x >= size and x % size == 0:
            return f"{x // size}{unit}"
    return str(x)


def length_bucket(tokens: int, edges: Sequence[int] | None = None) -> LengthBucket:
    """The bucket of a context of ``tokens``: (hi/2, hi] for the power of two hi ≥ tokens, or
    (edge[i-1], edge[i]] for given ascending ``edges`` (an open bucket above the last)."""
    lo, hi = _bucket_bounds(tokens, edges)
    if hi is None:
        return LengthBucket(lo=lo, hi=None, label=f">{_fmt(lo)}")
    return LengthBucket(lo=lo, hi=hi, label=f"≤{_fmt(hi)}")


def _bucket_bounds(tokens: int, edges: Sequence[int] | None) -> tuple[int, int | None]:
    if edges is None:
        hi = 1 if tokens <= 1 else 1 << (tokens - 1).bit_length()
        return hi // 2, hi
    i = bisect.bisect_left(edges, tokens)
    if i == len(edges):
        return edges[-1], None
    return (edges[i - 1] if i else 0), edges[i]


class _Buckets:
    """Length buckets by lower bound, each model built once however many rows fall in it."""

    def __init__(self, edges: Sequence[int] | None) -> None:
        self.edges = edges
        self.by_lo: dict[int, LengthBucket] = {}

    def of(self, tokens: int) -> int:
        lo, _ = _bucket_bounds(tokens, self.edges)
        if lo not in self.by_lo:
            self.by_lo[lo] = length_bucket(tokens, self.edges)
        return lo


def _scorer_order(rows: Sequence[CaseRow], primary: str | None) -> list[str]:
    names: dict[str, None] = {primary: None} if primary else {}
    for r in rows:
        for k in r.scores:
            names.setdefault(k, None)
    return list(names)


def _long_context_key(groups: Sequence[GroupSummary], endpoint: str) -> str | None:
    keys = [g.strategy for g in groups if g.endpoint == endpoint and g.strategy_name == LONG_CONTEXT]
    return LONG_CONTEXT if LONG_CONTEXT in keys else (keys[0] if keys else None)


# ---------------------------------------------------------------------------------------- summarize
def _answer_names(scorers: Sequence[str]) -> set[str]:
    return {n for n in scorers if is_judge_scorer(n) or (n in SCORERS and SCORERS[n].kind == "answer")}


def _zero_unanswered(rows: Sequence[CaseRow], answer_names: set[str]) -> list[CaseRow]:
    """A case without an answer scores 0 on every answer scorer, whatever was stored for it: rows
    stored before this rule may carry a score of the empty string, or None for an errored case of a
    question that scorer scores (it scored another case of the same question)."""
    scorable = {(r.question_id, k) for r in rows if r.answered for k, v in r.scores.items()
                if v is not None and k in answer_names}
    out = []
    for r in rows:
        if not r.answered:
            fixed = {k: (0.0 if k in answer_names and (v is not None or (r.question_id, k) in scorable) else v)
                     for k, v in r.scores.items()}
            if fixed != r.scores:
                r = r.model_copy(update={"scores": fixed})
        out.append(r)
    return out


def _group(rows: Sequence[CaseRow], scorers: Sequence[str], n_boot: int, seed: int) -> GroupSummary:
    first = rows[0]
    outcomes = {o.value: 0 for o in Outcome}
    for r in rows:
        outcomes[r.outcome.value] += 1
    routed = [r.route for r in rows if r.route is not None]
    routes = None
    if routed:
        counts: dict[str, int] = {}
        for route in routed:
            counts[route] = counts.get(route, 0) + 1
        routes = Routes(counts=counts, long_context_share=counts.get(LONG_CONTEXT, 0) / len(routed),
                        n=len(routed))
    answered = [r for r in rows if r.answered]
    unanswered = {o.value: outcomes[o.value] for o in Outcome if o in UNANSWERED and outcomes[o.value]}
    return GroupSummary(
        endpoint=first.endpoint, strategy=first.strategy, strategy_name=first.strategy_name, n=len(rows),
        scores=_estimates(rows, scorers, n_boot, seed), outcomes=outcomes,
        answered=len(answered), unanswered=unanswered, unanswered_share=(len(rows) - len(answered)) / len(rows),
        scores_answered=_estimates(answered, scorers, n_boot, seed),
        prompt_tokens=_total(r.prompt_tokens for r in rows),
        cached_tokens=_total(r.cached_tokens for r in rows),
        completion_tokens=_total(r.completion_tokens for r in rows),
        cost_usd=_total(r.cost_usd for r in rows),
        latency_s=_spread(r.latency_s for r in rows), ttft_s=_spread(r.ttft_s for r in rows), routes=routes)


def _depth_grid(key: tuple[str, str], rows: Sequence[CaseRow], scorers: Sequence[str],
                buckets: _Buckets) -> list[GridCell]:
    cells: dict[tuple[int, float], list[CaseRow]] = {}
    for r in rows:
        if r.depth is not None and r.context_tokens is not None:
            cells.setdefault((buckets.of(r.context_tokens), round(r.depth, 2)), []).append(r)
    out = []
    for (lo, depth), members in sorted(cells.items()):
        scores = {}
        for name in scorers:
            vals = [v for m in members if (v := m.scores.get(name)) is not None]
            scores[name] = CellMean(mean=float(np.mean(vals)) if vals else None, n=len(vals))
        out.append(GridCell(endpoint=key[0], strategy=key[1], bucket=buckets.by_lo[lo], depth=depth,
                            n=len(members), scores=scores))
    return out


_memo: ContextVar[dict[tuple[int, str], tuple[Sequence[CaseRow], dict[str, float]]] | None] = ContextVar(
    "summary_question_values", default=None)


def _by_question(rows: Sequence[CaseRow], scorer: str) -> dict[str, float]:
    """question id → score; a case without an answer and without a stored score counts 0. Inside
    ``summarize`` each (rows, scorer) is computed once (the comparisons, crossover tests and every
    recommendation scope reuse the same group and bucket lists)."""
    memo = _memo.get()
    if memo is not None:
        hit = memo.get((id(rows), scorer))
        if hit is not None and hit[0] is rows:
            return hit[1]
    out = _question_values(rows, scorer)
    if memo is not None:
        memo[(id(rows), scorer)] = (rows, out)
    return out


def _question_values(rows: Iterable[CaseRow], scorer: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        v = r.scores.get(scorer)
        if v is None and not r.answered:
            v = 0.0
        if v is not None:
            out.setdefault(r.question_id, v)
    return out


def _paired(x: dict[str, float], y: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = [k for k in x if k in y]
    return np.array([x[k] for k in keys], dtype=float), np.array([y[k] for k in keys], dtype=float)


def _bucket_length(bucket: LengthBucket) -> int:
    return bucket.hi if bucket.hi is not None else bucket.lo


def _label(endpoint: str, strategy: str, several: bool) -> str:
    return f"{strategy} on {endpoint}" if several else strategy


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 else f"{x:.1%}"


def health_of(outcomes: dict[str, int], errors: Sequence[ErrorClassCount], *,
              urls: Sequence[str] = ()) -> RunHealth:
    """The run's status from its cases' outcome counts and error classes (``errors``, most frequent
    first): ``failed`` when no case got an answer, ``completed_with_errors`` when some cases errored
    (outcome error or judge_error), else ``completed``. ``urls`` (the endpoints' base URLs) go into
    the reason, so it says where the requests went."""
    n = sum(outcomes.values())
    unanswered = {k: v for k, v in outcomes.items() if v and k in {o.value for o in UNANSWERED}}
    answered = n - sum(unanswered.values())
    n_errors = outcomes.get(Outcome.error.value, 0) + outcomes.get(Outcome.judge_error.value, 0)
    top = list(errors)[:5]
    where = f" (endpoint {', '.join(urls)})" if urls else ""
    detail = "; ".join(f"{e.error_class} × {e.count}" + (f": {e.example}" if e.example else "") for e in top[:3])
    if n and answered == 0:
        reasons = ", ".join(f"{k}: {v}" for k, v in unanswered.items())
        status = "failed"
        reason = f"no case got an answer ({reasons}){where}" + (f": {detail}" if detail else "")
    elif n_errors:
        status = "completed_with_errors"
        reason = f"{n_errors} of {n} cases ({_pct(n_errors / n)}) errored{where}" + (f": {detail}" if detail else "")
    else:
        status, reason = "completed", None
    return RunHealth(n=n, answered=answered, errors=n_errors, error_share=n_errors / n if n else None,
                     unanswered=unanswered, top_errors=top, status=status, reason=reason)


def error_classes(rows: Iterable[CaseRow]) -> list[ErrorClassCount]:
    """Error classes of the errored cases, most frequent first, with one example message each."""
    counts: dict[str, ErrorClassCount] = {}
    for r in rows:
        if r.outcome in (Outcome.error, Outcome.judge_error):
            key = r.error_class or "unknown"
            item = counts.setdefault(key, ErrorClassCount(error_class=key, count=0, example=r.error_message))
            item.count += 1
            if r.endpoint not in item.endpoints:
                item.endpoints.append(r.endpoint)
            if item.example is None and r.error_message:
                item.example = r.error_message
    return sorted(counts.values(), key=lambda e: (-e.count, e.error_class))


def summarize(rows: Sequence[CaseRow], *, primary: str | None, length_edges: Sequence[int] | None = None,
              n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, margin: float = 0.02,
              threshold: float = RULER_THRESHOLD, endpoint_urls: dict[str, str] | None = None) -> RunSummary:
    """Summarise a run's cases per endpoint × strategy, per context-length bucket and depth, with the
    paired comparisons, crossovers, effective lengths, run health and the recommendation.

    ``primary`` is the run's first scorer (None: the first score name found in the rows); crossovers,
    comparisons and the recommendation use it. ``length_edges`` replaces the power-of-two buckets
    with (edge[i-1], edge[i]] buckets. ``alpha``: the significance level of every test (Holm-adjusted
    across the run's comparisons and crossover tests); ``margin``: how much worse than the best (on
    the 0..1 scale) the recommended strategy may be; ``threshold``: the effective-length threshold.
    """
    token = _memo.set({})
    try:
        return _summarize(rows, primary=primary, length_edges=length_edges, n_boot=n_boot, seed=seed, alpha=alpha,
                          margin=margin, threshold=threshold, endpoint_urls=endpoint_urls)
    finally:
        _memo.reset(token)


def _summarize(rows: Sequence[CaseRow], *, primary: str | None, length_edges: Sequence[int] | None,
               n_boot: int, seed: int, alpha: float, margin: float, threshold: float,
               endpoint_urls: dict[str, str] | None) -> RunSummary:
    if not 0 < alpha < 0.5:
        raise UserInputError(f"alpha must be between 0 and 0.5, got {alpha}", field="alpha")
    if not 0 <= margin < 1:
        raise UserInputError(f"margin must be between 0 and 1 (a share of the score scale), got {margin}",
                             field="margin")
    edges = sorted(set(length_edges)) if length_edges else None
    if edges is not None and edges[0] <= 0:
        raise UserInputError("length edges must be positive token counts", field="length_edges")
    scorers = _scorer_order(rows, primary)
    primary = scorers[0] if scorers else None
    rows = _zero_unanswered(rows, _answer_names(scorers))
    by_group: dict[tuple[str, str], list[CaseRow]] = {}
    for r in rows:
        by_group.setdefault((r.endpoint, r.strategy), []).append(r)

    groups = [_group(members, scorers, n_boot, seed) for members in by_group.values()]
    for g in groups:
        lc = _long_context_key(groups, g.endpoint)
        base = next((x for x in groups if x.endpoint == g.endpoint and x.strategy == lc), None)
        if base is not None and base.prompt_tokens.mean and g.prompt_tokens.mean is not None:
            g.token_share = g.prompt_tokens.mean / base.prompt_tokens.mean
            g.token_share_versus = base.strategy

    by_length: list[LengthCell] = []
    grid: list[GridCell] = []
    buckets = _Buckets(edges)
    bucket_rows: dict[tuple[str, str], dict[int, list[CaseRow]]] = {}
    for key, members in by_group.items():
        per_bucket: dict[int, list[CaseRow]] = {}
        for r in members:
            if r.context_tokens is not None:
                per_bucket.setdefault(buckets.of(r.context_tokens), []).append(r)
        bucket_rows[key] = per_bucket
        cells = []
        for lo in sorted(per_bucket):
            cell = LengthCell(endpoint=key[0], strategy=key[1], bucket=buckets.by_lo[lo], n=len(per_bucket[lo]),
                              scores=_estimates(per_bucket[lo], scorers, n_boot, seed))
            cells.append(cell)
        by_length.extend(cells)
        grid.extend(_depth_grid(key, members, scorers, buckets))
        if primary and cells:
            ests = [c.scores[primary] for c in cells if c.scores[primary].mean is not None]
            lens = [_bucket_length(c.bucket) for c in cells if c.scores[primary].mean is not None]
            if ests:
                point, low, high = effective_length(lens, [e.mean for e in ests if e.mean is not None], [e.low for e in ests],
                                                    [e.high for e in ests], threshold=threshold)
                g = next(x for x in groups if (x.endpoint, x.strategy) == key)
                g.effective_length = EffectiveLength(scorer=primary, threshold=threshold, length=point, low=low,
                                                     high=high, n_buckets=len(ests))

    comparisons = _comparisons(groups, by_group, primary, n_boot, seed) if primary else []
    crossovers = _crossover_tests(groups, bucket_rows, buckets, primary, n_boot, seed) if primary else []
    family = [c.p_value for c in comparisons] + [t.p_value for co in crossovers for t in co.tests]
    adjusted = iter(holm(family).tolist())
    for c in comparisons:
        c.p_adjusted = next(adjusted)
    for co in crossovers:
        for t in co.tests:
            t.p_adjusted = next(adjusted)
        _crossover_verdict(co, bucket_rows, buckets, alpha, n_boot, seed)

    summary = RunSummary(primary=primary, scorers=scorers, n=len(rows), groups=groups, by_length=by_length,
                         grid=grid, crossovers=crossovers, attribution=error_attribution(rows),
                         judge_agreement=[a for a in judge_agreement(rows) if a.n], alpha=alpha,
                         comparisons=comparisons)
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r.outcome.value] = outcomes.get(r.outcome.value, 0) + 1
    errors = error_classes(rows)
    failing = {name for e in errors for name in e.endpoints} or {g.endpoint for g in groups}
    urls = sorted({(endpoint_urls or {}).get(name, "") for name in failing} - {""})
    summary.health = health_of(outcomes, errors, urls=urls)
    if summary.health.status == "failed":
        summary.recommendation = Recommendation(
            scorer=primary, margin=margin, alpha=alpha, cost_basis=_cost_basis(groups), overall=None,
            sentence="No recommendation: no case got an answer, so the run says nothing about the strategies.")
    else:
        summary.recommendation = recommend(summary, by_group, bucket_rows, buckets, margin=margin, alpha=alpha,
                                           n_boot=n_boot, seed=seed)
    return summary


def _best(groups: Sequence[GroupSummary], primary: str) -> GroupSummary | None:
    scored = [g for g in groups if g.scores.get(primary) is not None and g.scores[primary].mean is not None]
    return max(scored, key=lambda g: g.scores[primary].mean or 0.0) if scored else None


def _comparisons(groups: Sequence[GroupSummary], by_group: dict[tuple[str, str], list[CaseRow]], primary: str,
                 n_boot: int, seed: int) -> list[Comparison]:
    """Every group against the best one on the primary scorer, paired by question."""
    best = _best(groups, primary)
    if best is None:
        return []
    ref = _by_question(by_group[(best.endpoint, best.strategy)], primary)
    out = []
    for g in groups:
        if g is best:
            continue
        a, b = _paired(ref, _by_question(by_group[(g.endpoint, g.strategy)], primary))
        if not len(a):
            continue
        binary = bool(np.all((a == 0) | (a == 1)) and np.all((b == 0) | (b == 1)))
        out.append(Comparison(endpoint=g.endpoint, strategy=g.strategy, versus_endpoint=best.endpoint,
                              versus=best.strategy, scorer=primary, n=len(a),
                              difference=paired_difference(a, b, n_boot=n_boot, seed=seed),
                              p_value=paired_p_value(a, b, seed=seed),
                              test="mcnemar_exact" if binary else "sign_flip"))
    return out


def _crossover_tests(groups: Sequence[GroupSummary], bucket_rows: dict[tuple[str, str], dict[int, list[CaseRow]]],
                     buckets: _Buckets, primary: str, n_boot: int, seed: int) -> list[Crossover]:
    out = []
    for g in groups:
        lc = _long_context_key(groups, g.endpoint)
        if lc is None or g.strategy_name in (LONG_CONTEXT, NO_CONTEXT):
            continue
        mine, theirs = bucket_rows.get((g.endpoint, g.strategy), {}), bucket_rows.get((g.endpoint, lc), {})
        tests = []
        for lo in sorted(set(mine) & set(theirs)):
            a, b = _paired(_by_question(theirs[lo], primary), _by_question(mine[lo], primary))
            if not len(a):
                continue
            tests.append(BucketTest(bucket=buckets.by_lo[lo], n=len(a),
                                    difference=paired_difference(a, b, n_boot=n_boot, seed=seed),
                                    p_value=paired_p_value(a, b, seed=seed)))
        out.append(Crossover(endpoint=g.endpoint, strategy=g.strategy, versus=lc, scorer=primary, bucket=None,
                             length=None, n_buckets=len(tests), tests=tests))
    return out


def _crossover_verdict(co: Crossover, bucket_rows: dict[tuple[str, str], dict[int, list[CaseRow]]],
                       buckets: _Buckets, alpha: float, n_boot: int, seed: int) -> None:
    if not co.tests:
        co.verdict = "no evidence of a crossover: no length bucket has both strategies"
        return
    idx = crossover_index([t.difference.mean or 0.0 for t in co.tests],
                          [t.p_adjusted if t.p_adjusted is not None else 1.0 for t in co.tests], alpha=alpha)
    mine, theirs = bucket_rows[(co.endpoint, co.strategy)], bucket_rows[(co.endpoint, co.versus)]
    pairs = [_paired(_by_question(theirs[t.bucket.lo], co.scorer), _by_question(mine[t.bucket.lo], co.scorer))
             for t in co.tests]
    lo_i, hi_i, none_share = crossover_bootstrap(pairs, n_boot=n_boot, seed=seed)
    co.no_crossover_share = none_share
    if idx is None:
        co.verdict = (f"no evidence of a crossover: {co.strategy} is not significantly better than {co.versus} "
                      f"(Holm-adjusted, α = {alpha:g}) at any length from which it is not significantly worse")
        return
    co.bucket = co.tests[idx].bucket
    co.length = _bucket_length(co.bucket)
    co.interval_low = co.tests[lo_i].bucket if lo_i is not None else None
    co.interval_high = co.tests[hi_i].bucket if hi_i is not None else None
    span = (f"{co.interval_low.label if co.interval_low else '?'} to "
            f"{co.interval_high.label if co.interval_high else 'beyond the longest length'}")
    co.verdict = (f"{co.strategy} overtakes {co.versus} from {co.bucket.label} (significantly better there, "
                  f"Holm-adjusted α = {alpha:g}, and not significantly worse at any longer length; 95% "
                  f"bootstrap interval {span})")


# ----------------------------------------------------------------------------------- recommendation
def _cost_basis(groups: Sequence[GroupSummary]) -> str:
    groups = [g for g in groups if g.answered] or list(groups)  # a group without answers says nothing of cost
    priced = all(g.cost_usd.n and not g.cost_usd.unknown for g in groups) and any(g.cost_usd.sum for g in groups)
    return "cost_usd" if priced else "prompt_tokens"


def _mean_of(rows: Sequence[CaseRow], basis: str) -> float | None:
    vals = [v for r in rows if (v := (r.cost_usd if basis == "cost_usd" else r.prompt_tokens)) is not None]
    return float(np.mean(vals)) if vals else None


def _ratio(x: float | None, y: float | None) -> float | None:
    return x / y if x is not None and y else None


def _scope(members: dict[tuple[str, str], list[CaseRow]], primary: str, basis: str, bucket: LengthBucket | None,
           margin: float, alpha: float, n_boot: int, seed: int, several: bool) -> RecommendationScope:
    values = {k: _by_question(rows, primary) for k, rows in members.items()}
    cands = []
    for (ep, st), rows in members.items():
        vals = values[(ep, st)]
        cands.append(Candidate(endpoint=ep, strategy=st, n=len(vals),
                               mean=float(np.mean(list(vals.values()))) if vals else None,
                               cost=_mean_of(rows, basis), latency_p50=percentile(
                                   [r.latency_s for r in rows if r.latency_s is not None], 50),
                               verdict="" if any(r.answered for r in rows) else "unanswered"))
    # a group that answered nothing (an endpoint that was down) is shown, never recommended
    scored = [c for c in cands if c.mean is not None and c.verdict != "unanswered"]
    where = f"at {bucket.label} tokens" if bucket is not None else "over all questions"
    if not scored:
        return RecommendationScope(bucket=bucket, n_questions=0, best=None, pick=None, outcome="no_data",
                                   sentence=f"No recommendation {where}: no case has a {primary} score.")

    def cost_key(c: Candidate) -> float:
        return c.cost if c.cost is not None else float("inf")

    best = max(scored, key=lambda c: (c.mean or 0.0, -cost_key(c)))
    best.verdict = "best"
    n_q = max(c.n for c in scored)
    for c in scored:
        c.cost_ratio = _ratio(c.cost, best.cost)
        c.latency_ratio = _ratio(c.latency_p50, best.latency_p50)
        if c is best:
            continue
        if cost_key(c) >= cost_key(best):
            c.verdict = "costlier"
            continue
        ref, cand = _paired(values[(best.endpoint, best.strategy)], values[(c.endpoint, c.strategy)])
        test = non_inferiority(ref, cand, margin=margin, alpha=alpha, n_boot=n_boot, seed=seed)
        c.verdict, c.difference, c.more_questions = test.verdict, test.difference, test.more_questions
    within = [c for c in scored if c.verdict == "within"]
    pick = min(within, key=cost_key) if within else best
    cheaper_open = [c for c in scored if c.verdict == "undecided" and cost_key(c) < cost_key(pick)]
    unit = "cost" if basis == "cost_usd" else "input tokens"
    pts = f"{margin * 100:g} points"
    def name(c: Candidate) -> str:
        return _label(c.endpoint, c.strategy, several)

    numbers = f"{primary} {{:.2f}} vs {{:.2f}}; {n_q} questions, one-sided test at α = {alpha:g}"
    if pick is not best:
        lat = f" and {_pct(pick.latency_ratio)} of the latency" if pick.latency_ratio is not None else ""
        ratio = f"{_pct(pick.cost_ratio)} of the {unit}" if pick.cost_ratio is not None else f"fewer {unit}"
        outcome = "cheaper_within_margin"
        sentence = (f"Use {name(pick)} {where}: it scores within {pts} of the best, {name(best)}, at {ratio}{lat} "
                    f"({numbers.format(pick.mean, best.mean)}).")
    elif not [c for c in scored if cost_key(c) < cost_key(best)]:
        outcome = "best_is_cheapest"
        sentence = (f"Use {name(best)} {where}: it scores best ({primary} {best.mean:.2f}) and nothing is cheaper "
                    f"({n_q} questions).")
    elif cheaper_open:
        outcome = "too_few_data"
    else:
        outcome = "nothing_within_margin"
        sentence = (f"Use {name(best)} {where}: no cheaper strategy is within {pts} of it ({primary} "
                    f"{best.mean:.2f}; {n_q} questions, one-sided test at α = {alpha:g}).")
    more = None
    if cheaper_open:
        cheapest_open = min(cheaper_open, key=cost_key)
        more = cheapest_open.more_questions
        ask = f"about {more} more questions would decide it" if more else "more questions would decide it"
        ratio = (f"{_pct(cheapest_open.cost_ratio)} of the {unit}" if cheapest_open.cost_ratio is not None
                 else f"fewer {unit}")
        note = (f"{name(cheapest_open)} might be within {pts} of {name(best)} at {ratio} "
                f"({primary} {cheapest_open.mean:.2f} vs {best.mean:.2f}), but the data are too few: {ask}")
        if outcome == "too_few_data":
            sentence = f"Use {name(best)} {where} for now: {note} ({n_q} questions so far)."
        else:
            sentence = sentence[:-1] + f"; {note}."
    return RecommendationScope(bucket=bucket, n_questions=n_q, best=best, pick=pick, outcome=outcome,
                               more_questions=more, sentence=sentence, candidates=cands)


def recommend(summary: RunSummary, by_group: dict[tuple[str, str], list[CaseRow]],
              bucket_rows: dict[tuple[str, str], dict[int, list[CaseRow]]], buckets: _Buckets, *,
              margin: float = 0.02, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> Recommendation:
    """The Recommendation block: per length bucket and over all questions, the cheapest group (by
    mean cost per question, or mean input tokens when some price is unknown) whose primary score is
    not worse than the best group's by more than ``margin`` (one-sided non-inferiority test at ``alpha``
    on the paired questions), with its cost and latency ratios to the best."""
    primary = summary.primary
    basis = _cost_basis(summary.groups)
    if primary is None or not by_group:
        return Recommendation(scorer=primary, margin=margin, alpha=alpha, cost_basis=basis, overall=None,
                              sentence="No recommendation: the run has no scored case.")
    several = len({g.endpoint for g in summary.groups}) > 1
    overall = _scope(by_group, primary, basis, None, margin, alpha, n_boot, seed, several)
    per_length = []
    for lo in sorted({lo for per in bucket_rows.values() for lo in per}):
        members = {k: per[lo] for k, per in bucket_rows.items() if lo in per}
        if len(members) > 1 or len(bucket_rows) == 1:
            per_length.append(_scope(members, primary, basis, buckets.by_lo[lo], margin, alpha, n_boot, seed,
                                     several))
    if len(per_length) <= 1:
        per_length = []  # one bucket says the same as the overall verdict
    return Recommendation(scorer=primary, margin=margin, alpha=alpha, cost_basis=basis, overall=overall,
                          by_length=per_length, sentence=overall.sentence)


# ------------------------------------------------------------------------------------------ compare
def compare(rows: Sequence[CaseRow], a: str, b: str, *, scorer: str, endpoint: str | None = None,
            n_boot: int = 2000, seed: int = 0) -> PairedComparison:
    """Strategy ``b`` against strategy ``a`` (strategy keys) on the questions both scored with
    ``scorer``, paired per endpoint (only ``endpoint`` when given)."""
    present = list(dict.fromkeys(r.strategy for r in rows))
    for name, which in ((a, "a"), (b, "b")):
        if name not in present:
            raise UserInputError(f"strategy '{name}' is not in this run; strategies: {', '.join(present)}",
                                 field=which)
    sides: dict[str, dict[tuple[str, str], float]] = {a: {}, b: {}}
    answer_names = _answer_names([scorer])
    for r in rows:
        if r.strategy in sides and (endpoint is None or r.endpoint == endpoint):
            v = r.scores.get(scorer)
            if not r.answered and scorer in answer_names:
                v = 0.0  # a case without an answer is wrong, by definition
            if v is not None:
                sides[r.strategy].setdefault((r.endpoint, r.question_id), v)
    keys = [k for k in sides[a] if k in sides[b]]
    xa = [sides[a][k] for k in keys]
    xb = [sides[b][k] for k in keys]
    wins = sum(y > x for x, y in zip(xa, xb, strict=True))
    losses = sum(y < x for x, y in zip(xa, xb, strict=True))
    binary = bool(keys) and all(v in (0.0, 1.0) for v in xa + xb)
    p_value = paired_p_value(xa, xb, seed=seed) if keys else None
    return PairedComparison(
        a=a, b=b, scorer=scorer, endpoints=list(dict.fromkeys(k[0] for k in keys)), n=len(keys),
        mean_a=float(np.mean(xa)) if keys else None, mean_b=float(np.mean(xb)) if keys else None,
        difference=paired_difference(xa, xb, n_boot=n_boot, seed=seed),
        wins=wins, losses=losses, ties=len(keys) - wins - losses,
        mcnemar_p=mcnemar_exact(losses, wins) if binary else None, p_value=p_value,
        disagreements=list(dict.fromkeys(k[1] for k, x, y in zip(keys, xa, xb, strict=True) if x != y)))


# ---------------------------------------------------------------------------------------- exports
def _md(text: str) -> str:
    """Text safe in Markdown: run names are user input, so no table break and no HTML."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\n", " "))


def _ratio_cell(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def verdict_markdown(summary: RunSummary, *, with_status: bool = True, with_numbers: bool = True) -> str:
    """The verdict as Markdown, for exports and CI summaries: the run's status when not clean (unless
    ``with_status`` is False), the Recommendation sentence (overall and per length bucket) with its
    numbers, and the crossovers."""
    lines: list[str] = []
    h = summary.health
    if with_status and h is not None and h.status != "completed":
        lines += [f"**Status: {h.status.replace('_', ' ')}** — {_md(h.reason or '')}", ""]
    rec = summary.recommendation
    if rec is not None:
        lines += ["### Recommendation", "", _md(rec.sentence), ""]
        lines += [f"- {_md(s.sentence)}" for s in rec.by_length]
        if rec.by_length:
            lines.append("")
        if with_numbers and rec.overall is not None and len(rec.overall.candidates) > 1:
            basis = "cost" if rec.cost_basis == "cost_usd" else "input tokens"
            lines += [f"| endpoint | strategy | n | {rec.scorer} | vs best [{1 - 2 * rec.alpha:.0%} CI] | verdict | "
                      f"{basis} / best | latency / best |", "|---|---|---:|---:|---:|---|---:|---:|"]
            for c in rec.overall.candidates:
                d = c.difference
                diff = (f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" if d is not None and d.mean is not None
                        and d.low is not None and d.high is not None else "–")
                mean = "–" if c.mean is None else f"{c.mean:.3f}"
                lines.append(f"| {_md(c.endpoint)} | {_md(c.strategy)} | {c.n} | {mean} | {diff} | {c.verdict} | "
                             f"{_ratio_cell(c.cost_ratio)} | {_ratio_cell(c.latency_ratio)} |")
            lines.append("")
    for co in summary.crossovers:
        lines.append(f"- Crossover: {_md(co.verdict)}")
    return "\n".join(lines).rstrip() + "\n"
