"""Runs compared with a baseline: group matching, paired and unpaired differences, fixed / broken."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from evals.run_comparison import compare_runs
from evals.stats import unpaired_bootstrap
from evals.summary import CaseRow


def row(q: str, strategy: str, score: float | None, *, endpoint: str = "ep", name: str | None = None) -> CaseRow:
    return CaseRow(case_id=f"{q}-{endpoint}-{strategy}", question_id=q, endpoint=endpoint, strategy=strategy,
                   strategy_name=name or strategy.split("[")[0], scores={"em": score})


def test_unpaired_bootstrap_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.4, 0.2, 60), rng.normal(0.55, 0.3, 45)
    ours = unpaired_bootstrap(a, b, n_boot=20000, seed=3)
    ref = sps.bootstrap((a, b), lambda x, y, axis=-1: y.mean(axis=axis) - x.mean(axis=axis), paired=False,
                        vectorized=True, n_resamples=20000, method="percentile", random_state=5)
    assert ours.mean == pytest.approx(b.mean() - a.mean())
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    assert unpaired_bootstrap([], [1.0]).mean is None
    assert unpaired_bootstrap([1.0, 1.0], [0.0]).low == -1.0


def test_groups_match_by_key_then_by_the_only_strategy_of_a_name_and_the_only_endpoint():
    base = [row("q1", "rag[k=5]", 1.0, endpoint="qwen"), row("q1", "long_context", 1.0, endpoint="qwen")]
    other = [row("q1", "rag[chunk_tokens=64,k=2]", 0.0, endpoint="llama"),
             row("q1", "long_context", 1.0, endpoint="llama"), row("q1", "no_context", 0.0, endpoint="llama")]
    out = compare_runs(base, other, scorer="em")
    labels = [(p.label, p.match) for p in out.pairs]
    assert labels == [("rag[k=5] @ qwen → rag[chunk_tokens=64,k=2] @ llama", "by name"),
                      ("long_context @ qwen → long_context @ llama", "by name")]
    assert out.only_in_other == ["no_context @ llama"] and out.only_in_baseline == []
    assert [q.question_id for q in out.pairs[0].broken] == ["q1"]


def test_two_strategies_of_one_name_are_not_guessed():
    base = [row("q1", "rag[k=1]", 1.0), row("q1", "rag[k=2]", 1.0)]
    other = [row("q1", "rag[k=3]", 1.0), row("q1", "rag[k=4]", 1.0)]
    out = compare_runs(base, other, scorer="em")
    assert out.pairs == [] and len(out.only_in_baseline) == 2 and len(out.only_in_other) == 2


def test_unscored_cases_are_left_out_and_continuous_scores_get_no_mcnemar():
    base = [row("q1", "rag", 0.2), row("q2", "rag", None), row("q3", "rag", 0.9)]
    other = [row("q1", "rag", 0.7), row("q2", "rag", 1.0), row("q3", "rag", 0.9)]
    (pair,) = compare_runs(base, other, scorer="em").pairs
    assert pair.n_paired == 2 and pair.mcnemar_p is None
    assert pair.paired is not None and pair.paired.mean == pytest.approx(0.25)
    assert pair.unpaired is not None  # q2 is scored in one run only: the question sets differ
    assert [q.question_id for q in pair.fixed] == ["q1"] and pair.broken == []
