"""The run summary every surface shows (CLI table, REST API, dashboard), and paired comparisons.

Both work on light ``CaseRow`` records, not full case results, so a run of 100k cases summarises in
seconds. Every figure carries the number of cases behind it. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, Field

from evals.diagnostics import AttributionRow, JudgeAgreement, error_attribution, judge_agreement
from evals.domain import CaseResult, Outcome
from evals.errors import UserInputError
from evals.stats import Estimate, crossover_length, mcnemar_exact, mean_ci, paired_bootstrap, percentile

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

    @classmethod
    def from_result(cls, r: CaseResult) -> CaseRow:
        return cls(case_id=r.case_id, question_id=r.question_id, endpoint=r.endpoint, strategy=r.strategy,
                   strategy_name=r.strategy_name, outcome=r.outcome, error_class=r.error_class,
                   scores=dict(r.scores), prompt_tokens=r.usage.prompt_tokens,
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


class GroupSummary(BaseModel):
    """One endpoint × strategy."""

    endpoint: str
    strategy: str
    strategy_name: str
    n: int
    scores: dict[str, Estimate]
    outcomes: dict[str, int]
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


class Crossover(BaseModel):
    """The first length bucket from which ``strategy`` scores at least as well as ``versus`` at every
    longer bucket, on the primary scorer; None when it is behind at the longest."""

    endpoint: str
    strategy: str
    versus: str
    scorer: str
    bucket: LengthBucket | None
    length: int | None
    n_buckets: int


class RunSummary(BaseModel):
    primary: str | None
    scorers: list[str]
    n: int
    groups: list[GroupSummary]
    by_length: list[LengthCell]
    grid: list[GridCell]
    crossovers: list[Crossover]
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
    return GroupSummary(
        endpoint=first.endpoint, strategy=first.strategy, strategy_name=first.strategy_name, n=len(rows),
        scores=_estimates(rows, scorers, n_boot, seed), outcomes=outcomes,
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


def summarize(rows: Sequence[CaseRow], *, primary: str | None, length_edges: Sequence[int] | None = None,
              n_boot: int = 2000, seed: int = 0) -> RunSummary:
    """Summarise a run's cases per endpoint × strategy, per context-length bucket and depth.

    ``primary`` is the run's first scorer (None: the first score name found in the rows); crossovers
    use it. ``length_edges`` replaces the power-of-two buckets with (edge[i-1], edge[i]] buckets.
    """
    edges = sorted(set(length_edges)) if length_edges else None
    if edges is not None and edges[0] <= 0:
        raise UserInputError("length edges must be positive token counts", field="length_edges")
    scorers = _scorer_order(rows, primary)
    primary = scorers[0] if scorers else None
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
    means: dict[tuple[str, str], dict[int, float]] = {}
    buckets = _Buckets(edges)
    for key, members in by_group.items():
        per_bucket: dict[int, list[CaseRow]] = {}
        for r in members:
            if r.context_tokens is not None:
                per_bucket.setdefault(buckets.of(r.context_tokens), []).append(r)
        for lo in sorted(per_bucket):
            cell = LengthCell(endpoint=key[0], strategy=key[1], bucket=buckets.by_lo[lo], n=len(per_bucket[lo]),
                              scores=_estimates(per_bucket[lo], scorers, n_boot, seed))
            by_length.append(cell)
            est = cell.scores.get(primary) if primary else None
            if est is not None and est.mean is not None:
                means.setdefault(key, {})[lo] = est.mean
        grid.extend(_depth_grid(key, members, scorers, buckets))

    crossovers = []
    for g in groups if primary else []:
        lc = _long_context_key(groups, g.endpoint)
        if lc is None or g.strategy_name in (LONG_CONTEXT, NO_CONTEXT):
            continue
        mine, theirs = means.get((g.endpoint, g.strategy), {}), means.get((g.endpoint, lc), {})
        start = crossover_length(theirs, mine)
        bucket = buckets.by_lo[start] if start is not None else None
        crossovers.append(Crossover(
            endpoint=g.endpoint, strategy=g.strategy, versus=lc, scorer=str(primary), bucket=bucket,
            length=None if bucket is None else (bucket.hi if bucket.hi is not None else bucket.lo),
            n_buckets=len(set(mine) & set(theirs))))
    return RunSummary(primary=primary, scorers=scorers, n=len(rows), groups=groups, by_length=by_length,
                      grid=grid, crossovers=crossovers, attribution=error_attribution(rows),
                      judge_agreement=[a for a in judge_agreement(rows) if a.n])


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
    for r in rows:
        if r.strategy in sides and (endpoint is None or r.endpoint == endpoint):
            v = r.scores.get(scorer)
            if v is not None:
                sides[r.strategy].setdefault((r.endpoint, r.question_id), v)
    keys = [k for k in sides[a] if k in sides[b]]
    xa = [sides[a][k] for k in keys]
    xb = [sides[b][k] for k in keys]
    wins = sum(y > x for x, y in zip(xa, xb, strict=True))
    losses = sum(y < x for x, y in zip(xa, xb, strict=True))
    binary = bool(keys) and all(v in (0.0, 1.0) for v in xa + xb)
    return PairedComparison(
        a=a, b=b, scorer=scorer, endpoints=list(dict.fromkeys(k[0] for k in keys)), n=len(keys),
        mean_a=float(np.mean(xa)) if keys else None, mean_b=float(np.mean(xb)) if keys else None,
        difference=paired_bootstrap(xa, xb, n_boot=n_boot, seed=seed),
        wins=wins, losses=losses, ties=len(keys) - wins - losses,
        mcnemar_p=mcnemar_exact(losses, wins) if binary else None,
        disagreements=list(dict.fromkeys(k[1] for k, x, y in zip(keys, xa, xb, strict=True) if x != y)))
