"""Statistics behind the run summary: bootstrap intervals, paired tests, agreement, percentiles,
Pareto frontiers, effective context length and the long-context/retrieval crossover.

Pure numpy; every function is deterministic for a given ``seed``. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

_DRAWS_PER_CHUNK = 4_000_000  # resampled values held in memory at once


class Estimate(BaseModel):
    """A mean with its percentile-bootstrap interval over ``n`` values (all None when n = 0)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    level: float = 0.95


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    uniq, counts = np.unique(values, return_counts=True)
    if len(uniq) * 10 < n:  # a binomial draw costs about ten integer draws
        # Few distinct values (0/1 scores, ties): drawing n values with replacement is drawing how
        # many of each distinct value, a multinomial; the same distribution at a fraction of the cost.
        out = np.empty(n_boot)
        step = max(1, _DRAWS_PER_CHUNK // len(uniq))
        for i in range(0, n_boot, step):
            draws = rng.multinomial(n, counts / n, size=min(step, n_boot - i))
            out[i:i + len(draws)] = draws @ uniq / n
        return out
    out = np.empty(n_boot)
    step = max(1, _DRAWS_PER_CHUNK // n)
    for i in range(0, n_boot, step):
        idx = rng.integers(0, n, size=(min(step, n_boot - i), n), dtype=np.int32)
        out[i:i + len(idx)] = values[idx].mean(axis=1)
    return out


def mean_ci(values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0,
            level: float = 0.95) -> Estimate:
    """Mean of ``values`` with a percentile-bootstrap confidence interval at ``level``."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    arr = np.asarray(values, dtype=float)
    n = len(arr)
    if n == 0:
        return Estimate(mean=None, low=None, high=None, n=0, level=level)
    if not np.isfinite(arr).all():
        raise ValueError("values must be finite numbers")
    mean = float(arr.mean())
    if n == 1 or float(arr.min()) == float(arr.max()):
        return Estimate(mean=mean, low=mean, high=mean, n=n, level=level)
    means = _bootstrap_means(arr, n_boot, np.random.default_rng(seed))
    alpha = (1 - level) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return Estimate(mean=mean, low=float(low), high=float(high), n=n, level=level)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> Estimate:
    """Mean of the paired differences ``b[i] - a[i]`` with a bootstrap interval over the pairs."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} vs {len(b)})")
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    return mean_ci(diff, n_boot=n_boot, seed=seed, level=level)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    p = min(1, 2 · P[X ≤ min(b, c)]) for X ~ Binomial(b + c, 1/2); 1.0 when there are no discordant pairs.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n, k = b + c, min(b, c)
    if n == 0 or 2 * k >= n:
        return 1.0
    # log of C(n, i) / 2^n for i = 0..k, summed stably.
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
            for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * math.fsum(math.exp(x - top) for x in logs)
    return min(1.0, 2 * tail)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa between two raters' labels: (p_o − p_e) / (1 − p_e); 1.0 when p_e = 1."""
    if len(a) != len(b):
        raise ValueError(f"the two label lists differ in length ({len(a)} vs {len(b)})")
    n = len(a)
    if n == 0:
        raise ValueError("cohen_kappa needs at least one pair of labels")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    labels = set(a) | set(b)
    count_a = {lab: 0 for lab in labels}
    count_b = dict(count_a)
    for x, y in zip(a, b, strict=True):
        count_a[x] += 1
        count_b[y] += 1
    expected = sum(count_a[lab] * count_b[lab] for lab in labels) / (n * n)
    if expected == 1.0:
        return 1.0  # both raters used one and the same label throughout
    return (observed - expected) / (1 - expected)


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between order statistics, like numpy's
    default; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    xs = np.sort(np.asarray(values, dtype=float))
    if len(xs) == 0:
        return None
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return float(xs[lo] + (xs[hi] - xs[lo]) * frac if frac else xs[lo])


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points ``(cost, score)`` that no other point dominates (cost no higher and score
    no lower, one strictly), ordered by cost. Equal points are all kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    frontier: list[int] = []
    best: float | None = None
    best_cost: float | None = None
    for i in order:
        cost, score = points[i]
        if best is None or score > best:
            frontier.append(i)
            best, best_cost = score, cost
        elif score == best and cost == best_cost:
            frontier.append(i)
    return frontier


def effective_context_length(score_by_length: Mapping[int, float], threshold: float, *,
                             contiguous: bool = False) -> int | None:
    """RULER's effective context length: the longest length whose score exceeds ``threshold``.

    With ``contiguous`` every shorter length must exceed it too. None when no length qualifies.
    """
    best: int | None = None
    for length in sorted(score_by_length):
        if score_by_length[length] > threshold:
            best = length
        elif contiguous:
            break
    return best


def crossover_length(long_context: Mapping[int, float], retrieval: Mapping[int, float]) -> int | None:
    """The first length from which retrieval scores at least as well as long context at every longer
    length (over the lengths both have); None when retrieval is behind at the longest one."""
    common = sorted(set(long_context) & set(retrieval))
    start: int | None = None
    for length in reversed(common):
        if retrieval[length] >= long_context[length]:
            start = length
        else:
            break
    return start


def unpaired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95) -> Estimate:
    """``mean(b) − mean(a)`` for two independent samples, with a percentile-bootstrap interval that
    resamples each sample separately (scipy.stats.bootstrap's ``paired=False``, percentile method).
    ``n`` is the smaller sample's size; all None when either sample is empty."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = int(min(len(xa), len(xb)))
    if n == 0:
        return Estimate(mean=None, low=None, high=None, n=0, level=level)
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise ValueError("values must be finite numbers")
    mean = float(xb.mean() - xa.mean())
    rng = np.random.default_rng(seed)
    spread = [float(x.min()) != float(x.max()) and len(x) > 1 for x in (xa, xb)]
    if not any(spread):
        return Estimate(mean=mean, low=mean, high=mean, n=n, level=level)
    ma = _bootstrap_means(xa, n_boot, rng) if spread[0] else np.full(n_boot, xa.mean())
    mb = _bootstrap_means(xb, n_boot, rng) if spread[1] else np.full(n_boot, xb.mean())
    alpha = (1 - level) / 2
    low, high = np.percentile(mb - ma, [100 * alpha, 100 * (1 - alpha)])
    return Estimate(mean=mean, low=float(low), high=float(high), n=n, level=level)
