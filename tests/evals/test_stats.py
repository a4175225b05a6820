"""Bootstrap intervals, McNemar, kappa, percentiles, Pareto frontier, effective length, crossover."""

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from evals.stats import (
    Estimate,
    cohen_kappa,
    crossover_length,
    effective_context_length,
    mcnemar_exact,
    mean_ci,
    paired_bootstrap,
    pareto_frontier,
    percentile,
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
    assert mean_ci([0.25]) == Estimate(mean=0.25, low=0.25, high=0.25, n=1)
    assert mean_ci([1.0, 1.0, 1.0]) == Estimate(mean=1.0, low=1.0, high=1.0, n=3)
    narrow, wide = mean_ci([0, 1] * 20, level=0.5), mean_ci([0, 1] * 20, level=0.99)
    assert narrow.high - narrow.low < wide.high - wide.low
    with pytest.raises(ValueError):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], level=1.5)


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


def test_effective_context_length():
    scores = {4096: 0.95, 8192: 0.90, 16384: 0.80, 32768: 0.87, 65536: 0.5}
    assert effective_context_length(scores, 0.856) == 32768
    assert effective_context_length(scores, 0.856, contiguous=True) == 8192
    assert effective_context_length(scores, 0.99) is None
    assert effective_context_length({1000: 0.856}, 0.856) is None  # must exceed, not equal


def test_crossover_length():
    lc = {4096: 0.9, 8192: 0.85, 16384: 0.7, 32768: 0.5, 65536: 0.2}
    assert crossover_length(lc, {4096: 0.6, 8192: 0.6, 16384: 0.7, 32768: 0.65, 65536: 0.6}) == 16384
    # ahead at 8K, behind at 16K, ahead from 32K on: the crossover is where it stays ahead
    assert crossover_length(lc, {4096: 0.6, 8192: 0.9, 16384: 0.6, 32768: 0.65, 65536: 0.6}) == 32768
    assert crossover_length(lc, {k: 0.1 for k in lc}) is None
    assert crossover_length(lc, {k: 1.0 for k in lc}) == 4096
    assert crossover_length(lc, {8192: 0.9, 65536: 0.3, 131072: 0.9}) == 8192  # only shared lengths
    assert crossover_length({}, {1: 1.0}) is None
