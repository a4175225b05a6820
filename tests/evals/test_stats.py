"""Intervals (Wilson, BCa, Newcombe), McNemar, Holm, kappa, percentiles, Pareto frontier, effective
length, the crossover rule and the non-inferiority test; coverage and false-positive rates by seeded
simulation."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evals.stats import (
    Estimate,
    cohen_kappa,
    crossover_bootstrap,
    crossover_index,
    effective_context_length,
    effective_length,
    holm,
    mcnemar_exact,
    mean_ci,
    newcombe_paired_interval,
    non_inferiority,
    paired_bootstrap,
    paired_difference,
    paired_p_value,
    pareto_frontier,
    percentile,
    sign_flip_p,
    wilson_interval,
)


# ------------------------------------------------------------------------------------------ mean_ci
def test_mean_ci_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(7)
    small = mean_ci(rng.random(40))
    large = mean_ci(rng.random(4000))
    for est in (small, large):
        assert est.low < est.mean < est.high
    assert small.n == 40 and large.n == 4000
    assert (large.high - large.low) < (small.high - small.low) / 5


@pytest.mark.parametrize("n", [12, 4000])  # resampled by index, and by multinomial counts
def test_mean_ci_width_matches_the_normal_approximation_for_binary_scores(n):
    values = np.array([1.0] * int(0.3 * n) + [0.0] * (n - int(0.3 * n)))
    est = mean_ci(values, n_boot=4000)
    p = values.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / n)
    assert est.mean == pytest.approx(p)
    assert (est.high - est.low) / 2 == pytest.approx(half, rel=0.25)


def test_mean_ci_continuous_width_matches_the_normal_approximation():
    values = np.random.default_rng(3).normal(5.0, 2.0, size=3000)
    est = mean_ci(values, n_boot=3000)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert (est.high - est.low) / 2 == pytest.approx(half, rel=0.1)


def test_mean_ci_is_reproducible_and_depends_on_seed():
    values = np.random.default_rng(1).random(200)
    assert mean_ci(values, seed=3) == mean_ci(values, seed=3)
    assert mean_ci(values, seed=3) != mean_ci(values, seed=4)


def test_mean_ci_edge_cases():
    assert mean_ci([]) == Estimate(mean=None, low=None, high=None, n=0)
    narrow, wide = mean_ci([0, 1] * 20, level=0.5), mean_ci([0, 1] * 20, level=0.99)
    assert narrow.high - narrow.low < wide.high - wide.low
    with pytest.raises(ValueError):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], level=1.5)


def test_a_finite_sample_never_gets_a_zero_width_interval():
    est = mean_ci([1.0] * 20)
    assert est.method == "wilson" and est.low == pytest.approx(0.8389, abs=1e-4) and est.high == 1.0
    assert mean_ci([1.0] * 3).low < 0.5
    one = mean_ci([0.25])
    assert one.low < 0.25 < one.high and one.method == "wilson"
    flat = mean_ci([0.5] * 10)  # continuous scores without spread: Wilson on the mean bounds them
    assert flat.low < 0.5 < flat.high
    assert paired_difference([1.0] * 20, [1.0] * 20).low < 0 < paired_difference([1.0] * 20, [1.0] * 20).high
    assert paired_difference([0.5] * 8, [0.7] * 8).low < 0.2 < paired_difference([0.5] * 8, [0.7] * 8).high


@pytest.mark.parametrize(("k", "n"), [(0, 5), (1, 5), (20, 20), (19, 20), (7, 30), (50, 100), (999, 1000)])
def test_wilson_matches_statsmodels(k, n):
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    est = mean_ci([1.0] * k + [0.0] * (n - k))
    assert est.method == "wilson"
    assert (est.low, est.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert wilson_interval(k, n, level=0.9)[0] == pytest.approx(proportion_confint(k, n, 0.1, "wilson")[0])


def _wilson_exact_coverage(n: int, p: float) -> float:
    k = np.arange(n + 1)
    lo, hi = wilson_interval(k, n)
    return float((sps.binom.pmf(k, n, p) * ((lo <= p) & (p <= hi))).sum())


@pytest.mark.parametrize("n", [20, 30, 100])
@pytest.mark.parametrize("p", [0.5, 0.9, 0.95])
def test_wilson_coverage_by_simulation(n, p):
    """20,000 seeded binomial samples per cell through mean_ci's own interval. Where Wilson's exact
    coverage lies in 0.93-0.97 the simulated one must too; at the two cells where the binomial's
    discreteness puts every fixed-level interval outside that band (n=20, p=0.95: 0.925; n=30,
    p=0.9: 0.974; docs/metrics.md), the simulated coverage must match the exact one and the coverage
    averaged over p ± 0.025 (Brown, Cai & DasGupta 2001) must lie in the band."""
    rng = np.random.default_rng(1000 * n + int(100 * p))
    reps = 20_000
    k = rng.binomial(n, p, size=reps)
    lows, highs = np.empty(n + 1), np.empty(n + 1)
    for j in range(n + 1):  # every possible sample once, through the public function
        est = mean_ci([1.0] * j + [0.0] * (n - j))
        lows[j], highs[j] = est.low, est.high
    simulated = float(np.mean((lows[k] <= p) & (p <= highs[k])))
    exact = _wilson_exact_coverage(n, p)
    assert simulated == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / reps))
    if 0.93 <= exact <= 0.97:
        assert 0.93 <= simulated <= 0.97
    ps = rng.uniform(p - 0.025, min(p + 0.025, 0.999), size=reps)
    k2 = rng.binomial(n, ps)
    averaged = float(np.mean((lows[k2] <= ps) & (ps <= highs[k2])))
    assert 0.93 <= averaged <= 0.97


def test_bca_matches_scipy_bootstrap():
    values = np.random.default_rng(5).beta(2, 5, size=60)
    est = mean_ci(values, n_boot=20_000)
    ref = sps.bootstrap((values,), np.mean, n_resamples=20_000, method="BCa", random_state=1).confidence_interval
    assert est.method == "bca"
    assert est.low == pytest.approx(ref.low, abs=0.006) and est.high == pytest.approx(ref.high, abs=0.006)


def test_bca_coverage_on_skewed_continuous_scores():
    rng = np.random.default_rng(9)
    a, b, n = 2.0, 5.0, 50
    truth = a / (a + b)
    hits = sum(1 for i in range(300) if (e := mean_ci(rng.beta(a, b, n), n_boot=1000, seed=i)).low <= truth <= e.high)
    assert 0.90 <= hits / 300 <= 0.99


def test_paired_bootstrap_is_the_mean_difference_with_a_paired_interval():
    rng = np.random.default_rng(11)
    a = rng.random(300)
    b = a + 0.05 + rng.normal(0, 0.01, 300)  # b is better by 0.05 on every question
    est = paired_bootstrap(a, b)
    assert est.mean == pytest.approx(float(np.mean(b - a)))
    assert 0 < est.low < est.mean < est.high < 0.1
    # paired: far narrower than the spread of either sample would allow unpaired
    assert est.high - est.low < (mean_ci(a).high - mean_ci(a).low) / 5
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_newcombe_paired_interval_hand_checked_and_by_simulation():
    # no discordant pairs: the difference is 0 with a two-sided, non-zero interval
    low, high = newcombe_paired_interval(20, 0, 0, 0)
    assert low < 0 < high
    est = paired_difference([1, 1, 0, 0, 1] * 8, [1, 1, 1, 0, 1] * 8)
    assert est.method == "newcombe" and est.mean == pytest.approx(0.2) and est.low < 0.2 < est.high
    # coverage: correlated pairs, true difference 0.1
    rng = np.random.default_rng(21)
    reps, n = 4000, 60
    probs = np.array([0.55, 0.05, 0.15, 0.25])  # both, only a, only b, neither: p_b - p_a = 0.1
    tables = rng.multinomial(n, probs, size=reps)
    hits = 0
    for both, only_a, only_b, neither in tables:
        lo, hi = newcombe_paired_interval(int(both), int(only_a), int(only_b), int(neither))
        hits += lo <= 0.1 <= hi
    assert 0.93 <= hits / reps <= 0.97


def test_paired_p_value_uses_mcnemar_for_binary_and_sign_flip_otherwise():
    a = [1, 1, 0, 0, 1, 0, 1, 0, 0, 0]
    b = [1, 1, 1, 1, 1, 1, 1, 0, 1, 0]
    assert paired_p_value(a, b) == pytest.approx(binomtest(0, 4, 0.5).pvalue)
    rng = np.random.default_rng(2)
    x = rng.random(40)
    assert paired_p_value(x, x + 0.2) < 0.001
    assert paired_p_value(x, x) == 1.0
    same = rng.random(40)
    assert sign_flip_p(same - same.mean()) > 0.5
    # the randomisation distribution is exact: with 10 differences all 2^10 sign vectors are equally likely
    d = np.array([0.3, 0.1, 0.2, 0.4, -0.1, 0.2, 0.05, 0.3, -0.2, 0.1])
    signs = np.array(np.meshgrid(*[[-1, 1]] * 10)).reshape(10, -1).T
    exact = float(np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12))
    assert sign_flip_p(d, n_perm=40_000) == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, size=3 + seed * 4)
    p[0] = p[1]  # a tie
    expected = multipletests(p, alpha=0.05, method="holm")[1]
    assert np.allclose(holm(p), expected)
    assert len(holm([])) == 0


# ------------------------------------------------------------------------------------------ McNemar
@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 1), (1, 0), (3, 3), (2, 9), (9, 2), (0, 12), (17, 30),
                                      (250, 300), (1000, 1100), (5, 60)])
def test_mcnemar_exact_matches_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_hand_computed():
    # b=1, c=5: 2 · (C(6,0) + C(6,1)) / 2^6 = 14 / 64
    assert mcnemar_exact(1, 5) == pytest.approx(14 / 64)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


# -------------------------------------------------------------------------------------------- kappa
@pytest.mark.parametrize(("a", "b"), [
    ([1, 0, 1, 1, 0, 1, 0, 0], [1, 0, 0, 1, 0, 1, 1, 0]),
    (["yes", "no", "yes", "maybe", "no"], ["yes", "no", "maybe", "maybe", "yes"]),
    ([1, 2, 3, 1, 2, 3, 1, 2, 3], [1, 2, 3, 3, 2, 1, 1, 2, 3]),
    ([0, 0, 0, 1], [1, 1, 1, 0]),
    ([1, 1, 1, 1, 0], [1, 1, 1, 1, 1]),
])
def test_cohen_kappa_matches_sklearn(a, b):
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_cohen_kappa_hand_computed_and_edges():
    # p_o = 1/2, p_e = (2·2 + 2·2) / 16 = 1/2 → kappa = 0
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 1]) == pytest.approx(0.0)
    # p_o = 3/4, p_e = (2·3 + 2·1) / 16 = 1/2 → kappa = 1/2
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "a"]) == pytest.approx(0.5)
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])
    with pytest.raises(ValueError):
        cohen_kappa([], [])


# --------------------------------------------------------------------------------------- percentile
@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
@pytest.mark.parametrize("q", [0, 5, 25, 50, 90, 95, 99.9, 100])
def test_percentile_matches_numpy(size, q):
    values = np.random.default_rng(size).exponential(2.0, size)
    assert percentile(list(values), q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_edges():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2, 4], 50) == 2.5
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# ------------------------------------------------------------------------------- Pareto and lengths
def test_pareto_frontier_keeps_cheapest_for_each_score_level():
    points = [(10.0, 0.80),  # 0 long context: expensive, best
              (2.0, 0.70),   # 1 rag: cheap, good
              (3.0, 0.65),   # 2 dominated by 1
              (1.0, 0.20),   # 3 no context: cheapest
              (10.0, 0.75),  # 4 dominated by 0 (same cost, lower score)
              (6.0, 0.70),   # 5 dominated by 1 (same score, higher cost)
              (2.0, 0.70)]   # 6 equal to 1: kept with it
    assert pareto_frontier(points) == [3, 1, 6, 0]
    assert pareto_frontier([]) == []


def test_effective_length_is_contiguous_at_or_above_the_threshold():
    scores = {4096: 0.95, 8192: 0.90, 16384: 0.80, 32768: 0.87, 65536: 0.5}
    assert effective_context_length(scores) == 8192  # 16K falls below: 32K does not count
    assert effective_context_length({1000: 0.856, 2000: 0.9}) == 2000  # "at or above"
    assert effective_context_length(scores, 0.99) is None
    lengths = [4096, 8192, 16384]
    point, low, high = effective_length(lengths, [0.95, 0.90, 0.84], [0.90, 0.80, 0.70], [0.99, 0.97, 0.92])
    assert (point, low, high) == (8192, 4096, 16384)


def test_crossover_index_rule():
    # significantly better at 16K and 32K, not significantly worse anywhere later
    assert crossover_index([-0.3, -0.1, 0.2, 0.3], [0.001, 0.5, 0.01, 0.001]) == 2
    # ties (difference 0, p 1) never count
    assert crossover_index([0, 0, 0], [1, 1, 1]) is None
    # better at one bucket but significantly worse at a longer one: not there
    assert crossover_index([0.3, -0.3, 0.3], [0.01, 0.01, 0.01]) == 2
    # better but not significant after adjustment
    assert crossover_index([0.1, 0.2], [0.2, 0.06]) is None


def _simulated_crossovers(n: int, acc_lc: list[float], acc_rag: list[float], runs: int, seed: int) -> list[int | None]:
    rng = np.random.default_rng(seed)
    k = len(acc_lc)
    lc = rng.random((runs, k, n)) < np.asarray(acc_lc)[None, :, None]
    rag = rng.random((runs, k, n)) < np.asarray(acc_rag)[None, :, None]
    found = []
    for r in range(runs):
        a, b = lc[r].astype(float), rag[r].astype(float)
        raw = [paired_p_value(a[j], b[j]) for j in range(k)]
        found.append(crossover_index((b - a).mean(axis=1), holm(raw)))
    return found


@pytest.mark.parametrize("n", [20, 50, 200])
def test_equal_strategies_rarely_show_a_crossover(n):
    found = _simulated_crossovers(n, [0.8] * 6, [0.8] * 6, runs=400, seed=n)
    assert sum(f is not None for f in found) / 400 <= 0.05


def test_a_real_crossover_is_found_where_it_is():
    found = _simulated_crossovers(200, [0.95, 0.9, 0.8, 0.5, 0.3], [0.7] * 5, runs=50, seed=1)
    assert sum(f == 3 for f in found) / 50 >= 0.8


def test_crossover_bootstrap_interval():
    rng = np.random.default_rng(4)
    acc_lc, acc_rag = [0.95, 0.9, 0.5, 0.3], [0.7] * 4
    pairs = [((rng.random(150) < p).astype(float), (rng.random(150) < q).astype(float))
             for p, q in zip(acc_lc, acc_rag, strict=True)]
    lo, hi, none_share = crossover_bootstrap(pairs, n_boot=2000, seed=0)
    assert lo == 2 and hi == 2 and none_share < 0.05
    tie = [(np.ones(30), np.ones(30))] * 3
    assert crossover_bootstrap(tie)[2] == 1.0


def test_non_inferiority_verdicts():
    rng = np.random.default_rng(8)
    best = (rng.random(2000) < 0.8).astype(float)
    same = best.copy()
    same[rng.choice(2000, 20, replace=False)] = 1 - same[rng.choice(2000, 20, replace=False)]
    assert non_inferiority(best, same, margin=0.02).verdict == "within"
    worse = best * (rng.random(2000) < 0.8)
    assert non_inferiority(best, worse, margin=0.02).verdict == "worse"
    few = non_inferiority(best[:30], best[:30], margin=0.02)
    assert few.verdict == "undecided" and few.more_questions is not None and few.more_questions > 100
