"""Statistics behind the run summary: confidence intervals, paired tests, multiple-comparison
correction, agreement, percentiles, Pareto frontiers, effective context length, the crossover rule
and the non-inferiority test behind the recommendation.

Pure numpy (and the standard library's ``NormalDist``); every function is deterministic for a given
``seed`` and works on whole arrays, so a summary of many groups costs a few vector operations each.
Definitions and references: ``docs/metrics.md``.

Which interval a mean gets:

- scores that are all 0 or 1: the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001);
- any other scores: the BCa bootstrap (Efron 1987), resampling the values;
- a sample without spread (all values equal, or a single value) of scores in 0..1: the Wilson
  interval of the mean taken as a proportion, which bounds the variance of any 0..1 variable with
  that mean (a Bernoulli variable has the largest), so no finite sample gets a zero-width interval.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np
from pydantic import BaseModel

_DRAWS_PER_CHUNK = 4_000_000  # resampled values held in memory at once
_NORMAL = NormalDist()

IntervalMethod = Literal["wilson", "bca", "newcombe", "none"]


class Estimate(BaseModel):
    """A mean with its confidence interval over ``n`` values (all None when n = 0).

    ``method`` names the interval: ``wilson`` (0/1 scores, or a sample without spread), ``bca``
    (bootstrap, other scores), ``newcombe`` (difference of paired 0/1 scores).
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    level: float = 0.95
    method: IntervalMethod = "none"


def z_quantile(p: float) -> float:
    """The standard normal quantile Φ⁻¹(p)."""
    return _NORMAL.inv_cdf(p)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")


# -------------------------------------------------------------------------------------------- Wilson
def wilson_interval(k: float | np.ndarray, n: float | np.ndarray, *, level: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (arrays broadcast; n > 0).

    centre = (p̂ + z²/2n) / (1 + z²/n), half width = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n),
    z = Φ⁻¹((1 + level)/2). Equals statsmodels' ``proportion_confint(method="wilson")``.
    """
    _check_level(level)
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_quantile((1 + level) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(np.maximum(p * (1 - p), 0) / n + z * z / (4 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _wilson_estimate(mean: float, n: int, level: float) -> Estimate:
    lo, hi = wilson_interval(mean * n, n, level=level)
    return Estimate(mean=mean, low=float(lo), high=float(hi), n=n, level=level, method="wilson")


# --------------------------------------------------------------------------------------------- BCa
def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    uniq, counts = np.unique(values, return_counts=True)
    if len(uniq) * 10 < n:  # a binomial draw costs about ten integer draws
        # Few distinct values (ties): drawing n values with replacement is drawing how many of each
        # distinct value, a multinomial; the same distribution at a fraction of the cost.
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


def bca_interval(values: np.ndarray, boot_means: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """BCa interval of the mean from bootstrap replicates of the mean (Efron 1987; Efron &
    Tibshirani 1993, §14.3).

    z0 = Φ⁻¹(share of replicates below the mean, ties counted half); acceleration from the jackknife
    means θ₍ᵢ₎: a = Σ(θ̄ − θ₍ᵢ₎)³ / (6 (Σ(θ̄ − θ₍ᵢ₎)²)^{3/2}); the interval is the replicates'
    α₁ and α₂ quantiles, αⱼ = Φ(z0 + (z0 + z_j) / (1 − a (z0 + z_j))) for z_j = Φ⁻¹((1 ∓ level)/2).
    """
    n = len(values)
    mean = float(values.mean())
    b = len(boot_means)
    share = float(np.count_nonzero(boot_means < mean) + 0.5 * np.count_nonzero(boot_means == mean)) / b
    share = min(max(share, 0.5 / b), 1 - 0.5 / b)
    z0 = z_quantile(share)
    jack = (values.sum() - values) / (n - 1)
    dev = jack.mean() - jack
    ss = float((dev ** 2).sum())
    accel = float((dev ** 3).sum()) / (6 * ss ** 1.5) if ss > 0 else 0.0
    qs = []
    for tail in ((1 - level) / 2, (1 + level) / 2):
        zt = z_quantile(tail)
        adj = _NORMAL.cdf(z0 + (z0 + zt) / (1 - accel * (z0 + zt)))
        qs.append(100 * min(max(adj, 0.0), 1.0))
    lo, hi = np.percentile(boot_means, qs)
    return float(lo), float(hi)


def _is_binary(arr: np.ndarray) -> bool:
    return bool(np.all((arr == 0) | (arr == 1)))


def mean_ci(values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0,
            level: float = 0.95) -> Estimate:
    """Mean of ``values`` with a confidence interval at ``level``: Wilson for 0/1 scores, BCa
    bootstrap otherwise, Wilson on the mean for 0..1 samples without spread (see the module)."""
    _check_level(level)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    arr = np.asarray(values, dtype=float)
    n = len(arr)
    if n == 0:
        return Estimate(mean=None, low=None, high=None, n=0, level=level)
    if not np.isfinite(arr).all():
        raise ValueError("values must be finite numbers")
    mean = float(arr.mean())
    lo_v, hi_v = float(arr.min()), float(arr.max())
    if _is_binary(arr) or (lo_v == hi_v and 0 <= lo_v <= 1):
        return _wilson_estimate(mean, n, level)
    if lo_v == hi_v:  # outside 0..1 there is no bound on the spread to fall back on
        return Estimate(mean=mean, low=mean, high=mean, n=n, level=level, method="none")
    means = _bootstrap_means(arr, n_boot, np.random.default_rng(seed))
    low, high = bca_interval(arr, means, level=level)
    return Estimate(mean=mean, low=min(low, mean), high=max(high, mean), n=n, level=level, method="bca")


# --------------------------------------------------------------------------------- paired samples
def _paired_arrays(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} vs {len(b)})")
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise ValueError("values must be finite numbers")
    return xa, xb


def newcombe_paired_interval(both: int, only_a: int, only_b: int, neither: int, *,
                             level: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for p_b − p_a of paired proportions.

    From the 2×2 table of pairs: ``both`` (a and b right), ``only_a``, ``only_b``, ``neither``.
    p_a = (both + only_a)/n, p_b = (both + only_b)/n with Wilson intervals (l, u);
    φ = (both·neither − only_a·only_b) / √((both+only_a)(only_b+neither)(both+only_b)(only_a+neither)),
    0 when a margin is empty; low = d − √((p_b−l_b)² − 2φ(p_b−l_b)(u_a−p_a) + (u_a−p_a)²),
    high = d + √((u_b−p_b)² − 2φ(u_b−p_b)(p_a−l_a) + (p_a−l_a)²).
    """
    n = both + only_a + only_b + neither
    if n <= 0:
        raise ValueError("the paired table is empty")
    pa, pb = (both + only_a) / n, (both + only_b) / n
    (la, lb), (ua, ub) = wilson_interval(np.array([both + only_a, both + only_b]), n, level=level)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins > 0 else 0.0
    d = pb - pa
    low = d - math.sqrt(max((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2, 0.0))
    high = d + math.sqrt(max((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2, 0.0))
    return max(low, -1.0), min(high, 1.0)


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, n_boot: int = 2000,
                      seed: int = 0, level: float = 0.95) -> Estimate:
    """Mean of the paired differences ``b[i] − a[i]`` with a paired interval at ``level``:
    Newcombe's hybrid score interval when every score is 0 or 1, otherwise the BCa bootstrap over the
    pairs (per-question difficulty cancels out); a sample of equal differences gets the Wilson
    interval of (d + 1)/2 mapped back, so it is never zero-width."""
    _check_level(level)
    xa, xb = _paired_arrays(a, b)
    n = len(xa)
    if n == 0:
        return Estimate(mean=None, low=None, high=None, n=0, level=level)
    diff = xb - xa
    mean = float(diff.mean())
    if _is_binary(xa) and _is_binary(xb):
        both = int(np.count_nonzero((xa == 1) & (xb == 1)))
        only_a = int(np.count_nonzero((xa == 1) & (xb == 0)))
        only_b = int(np.count_nonzero((xa == 0) & (xb == 1)))
        low, high = newcombe_paired_interval(both, only_a, only_b, n - both - only_a - only_b, level=level)
        return Estimate(mean=mean, low=low, high=high, n=n, level=level, method="newcombe")
    if float(diff.min()) == float(diff.max()):
        if -1 <= mean <= 1:
            lo, hi = wilson_interval((mean + 1) / 2 * n, n, level=level)
            return Estimate(mean=mean, low=float(2 * lo - 1), high=float(2 * hi - 1), n=n, level=level,
                            method="wilson")
        return Estimate(mean=mean, low=mean, high=mean, n=n, level=level, method="none")
    means = _bootstrap_means(diff, n_boot, np.random.default_rng(seed))
    low, high = bca_interval(diff, means, level=level)
    return Estimate(mean=mean, low=min(low, mean), high=max(high, mean), n=n, level=level, method="bca")


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> Estimate:
    """Alias of :func:`paired_difference` (kept for callers of the first version)."""
    return paired_difference(a, b, n_boot=n_boot, seed=seed, level=level)


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


def sign_flip_p(diff: Sequence[float] | np.ndarray, *, n_perm: int = 4000, seed: int = 0) -> float:
    """Two-sided paired randomisation test (Fisher 1935; Good 2005): under H0 each difference's sign
    is exchangeable, so p = (1 + #{|mean(s·d)| ≥ |mean(d)|}) / (1 + n_perm) over ``n_perm`` random
    sign vectors s. 1.0 when every difference is 0."""
    d = np.asarray(diff, dtype=float)
    if len(d) == 0 or not np.any(d):
        return 1.0
    observed = abs(float(d.mean())) - 1e-12
    rng = np.random.default_rng(seed)
    hits = 0
    step = max(1, _DRAWS_PER_CHUNK // len(d))
    for i in range(0, n_perm, step):
        signs = rng.integers(0, 2, size=(min(step, n_perm - i), len(d)), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) / len(d) >= observed))
    return (1 + hits) / (1 + n_perm)


def paired_p_value(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, n_perm: int = 4000,
                   seed: int = 0) -> float:
    """Two-sided p-value of "b and a score the same on average": exact McNemar when every score is
    0 or 1, the sign-flip randomisation test otherwise."""
    xa, xb = _paired_arrays(a, b)
    if _is_binary(xa) and _is_binary(xb):
        return mcnemar_exact(int(np.count_nonzero(xa > xb)), int(np.count_nonzero(xb > xa)))
    return sign_flip_p(xb - xa, n_perm=n_perm, seed=seed)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order: with p sorted ascending,
    adj₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎). Equals statsmodels' ``multipletests(method="holm")``."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


# --------------------------------------------------------------------------------- non-inferiority
class NonInferiority(BaseModel):
    """Is ``candidate`` at most ``margin`` worse than ``reference``, on paired scores?

    ``difference`` is mean(candidate − reference) with its two-sided interval at level 1 − 2α, whose
    lower bound is the one-sided (1 − α) bound of the test. ``verdict``: ``within`` (low > −margin),
    ``worse`` (high < −margin), ``undecided``; ``more_questions`` estimates how many more paired
    questions would make an undecided verdict clear (the interval shrinks as 1/√n).
    """

    difference: Estimate
    margin: float
    alpha: float
    verdict: Literal["within", "worse", "undecided"]
    more_questions: int | None = None


def non_inferiority(reference: Sequence[float] | np.ndarray, candidate: Sequence[float] | np.ndarray, *,
                    margin: float, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> NonInferiority:
    """The one-sided non-inferiority test of ``candidate`` against ``reference`` at ``alpha`` by the
    confidence-interval method (CONSORT; Piaggio et al. 2012)."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5, got {alpha}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    est = paired_difference(reference, candidate, n_boot=n_boot, seed=seed, level=1 - 2 * alpha)
    if est.mean is None or est.low is None or est.high is None:
        return NonInferiority(difference=est, margin=margin, alpha=alpha, verdict="undecided")
    if est.low > -margin:
        return NonInferiority(difference=est, margin=margin, alpha=alpha, verdict="within")
    if est.high < -margin:
        return NonInferiority(difference=est, margin=margin, alpha=alpha, verdict="worse")
    gap = est.mean + margin  # how far the estimate sits from the margin
    half = est.mean - est.low if gap > 0 else est.high - est.mean
    more = None
    if abs(gap) > 1e-9 and half > 0:
        more = max(1, math.ceil(est.n * (half / abs(gap)) ** 2 - est.n))
    return NonInferiority(difference=est, margin=margin, alpha=alpha, verdict="undecided", more_questions=more)


# ------------------------------------------------------------------------------ crossover, length
def crossover_index(differences: Sequence[float], adjusted_p: Sequence[float], *, alpha: float = 0.05) -> int | None:
    """Index of the first length bucket (buckets in ascending length) where the later strategy is
    significantly better (difference > 0 and adjusted p < alpha) and is not significantly worse at
    any longer bucket; None when there is no such bucket. Ties never count."""
    d = np.asarray(differences, dtype=float)
    p = np.asarray(adjusted_p, dtype=float)
    better = (d > 0) & (p < alpha)
    worse = (d < 0) & (p < alpha)
    worse_later: np.ndarray = np.flip(np.cumsum(np.flip(worse))) - worse  # significantly worse at a longer bucket
    for i in range(len(d)):
        if better[i] and worse_later[i] == 0:
            return i
    return None


def crossover_bootstrap(pairs: Sequence[tuple[np.ndarray, np.ndarray]], *, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> tuple[int | None, int | None, float]:
    """Where the crossover lies when the questions are resampled: for each bootstrap replicate
    (questions resampled within every bucket) the first bucket from which the mean paired difference
    is > 0 at that and every longer bucket. Returns the (1 − level)/2 and (1 + level)/2 quantiles of
    that bucket index (None: beyond the last bucket, i.e. no crossover in that share of replicates)
    and the share of replicates without one."""
    k = len(pairs)
    if k == 0:
        return None, None, 1.0
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, k))
    for j, (a, b) in enumerate(pairs):
        diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
        boot[:, j] = _bootstrap_means(diff, n_boot, rng) if len(diff) else 0.0
    ahead = boot > 0
    # ahead at this and every longer bucket: reversed cumulative AND
    suffix = np.flip(np.cumprod(np.flip(ahead, axis=1), axis=1), axis=1).astype(bool)
    first = np.where(suffix.any(axis=1), suffix.argmax(axis=1), k)
    lo, hi = np.percentile(first, [100 * (1 - level) / 2, 100 * (1 + level) / 2], method="lower")
    none_share = float(np.mean(first == k))
    return (int(lo) if lo < k else None), (int(hi) if hi < k else None), none_share


RULER_THRESHOLD = 0.856  # RULER README: the effective length is where the score stays at or above 85.6


def effective_length(lengths: Sequence[int], means: Sequence[float], lows: Sequence[float | None] | None = None,
                     highs: Sequence[float | None] | None = None, *, threshold: float = RULER_THRESHOLD
                     ) -> tuple[int | None, int | None, int | None]:
    """RULER's effective context length: the longest length up to which the score stays at or above
    ``threshold`` at every length (lengths ascending). Returns (point, low, high): the point from the
    means, the low end from the intervals' lower bounds, the high end from their upper bounds
    (None where even the shortest length falls below). A missing bound (None) counts as below."""
    order = np.argsort(np.asarray(lengths))
    ls = np.asarray(lengths)[order]

    def longest(values: Sequence[float | None] | None) -> int | None:
        if values is None:
            return None
        ok = np.asarray(values, dtype=float)[order] >= threshold
        run = int(np.argmin(ok)) if not ok.all() else len(ok)  # leading stretch at or above
        return int(ls[run - 1]) if run else None

    return longest(means), longest(lows), longest(highs)


def effective_context_length(score_by_length: dict[int, float], threshold: float = RULER_THRESHOLD) -> int | None:
    """The point estimate of :func:`effective_length` from a length → score mapping."""
    lengths = sorted(score_by_length)
    return effective_length(lengths, [score_by_length[x] for x in lengths], threshold=threshold)[0]


# ------------------------------------------------------------------------------------ descriptive
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
