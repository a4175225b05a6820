"""The verdict parts of the run summary on constructed runs: unanswered cases, run health, the
crossover rule, effective length and the recommendation."""

import numpy as np
import pytest

from evals.domain import Outcome
from evals.errors import UserInputError
from evals.suites.importers import import_longbench
from evals.suites.io import parse_suite
from evals.summary import CaseRow, ErrorClassCount, health_of, summarize


def rows_for(strategy, scores, *, endpoint="e1", ctx=None, cost=None, prompt=1000, latency=1.0, outcomes=None,
             start=0, name=None, errors=None):
    out = []
    for i, v in enumerate(scores):
        outcome = outcomes[i] if outcomes else Outcome.ok
        out.append(CaseRow(case_id=f"{endpoint}-{strategy}-{i + start}", question_id=f"q{i + start}",
                           endpoint=endpoint, strategy=strategy, strategy_name=name or strategy.split("[")[0],
                           outcome=outcome, scores={"exact_match": v},
                           error_class=(errors or {}).get(i), error_message="connection failed" if errors and i in errors else None,
                           prompt_tokens=prompt, cost_usd=cost, latency_s=latency,
                           context_tokens=ctx[i] if ctx else None))
    return out


def binary(rng, p, n):
    return (rng.random(n) < p).astype(float).tolist()


# ------------------------------------------------------------------------------------- unanswered
def test_unanswered_cases_count_as_wrong_and_are_shown_by_reason():
    outcomes = [Outcome.ok] * 6 + [Outcome.over_window] * 3 + [Outcome.error]
    # rows stored before the rule may carry 1.0 for an over_window case scored against an empty answer
    lc = rows_for("long_context", [1, 1, 1, 1, 1, 0, 1, 1, 1, None], outcomes=outcomes)
    s = summarize(lc, primary="exact_match", n_boot=200)
    g = s.groups[0]
    assert g.scores["exact_match"].mean == pytest.approx(5 / 9)  # the errored case has no stored score
    assert g.scores_answered["exact_match"].mean == pytest.approx(5 / 6)
    assert (g.answered, g.unanswered, g.unanswered_share) == (6, {"over_window": 3, "error": 1}, 0.4)


# ----------------------------------------------------------------------------------------- health
def test_health_failed_when_nothing_was_answered():
    rows = rows_for("rag", [0.0] * 4, outcomes=[Outcome.error] * 4, errors={0: "connect_error", 1: "connect_error",
                                                                           2: "connect_error", 3: "timeout"})
    s = summarize(rows, primary="exact_match", endpoint_urls={"e1": "http://127.0.0.1:8097"})
    h = s.health
    assert (h.status, h.errors, h.error_share, h.answered) == ("failed", 4, 1.0, 0)
    assert [(e.error_class, e.count) for e in h.top_errors] == [("connect_error", 3), ("timeout", 1)]
    assert "http://127.0.0.1:8097" in h.reason and "connect_error × 3" in h.reason
    assert "connection failed" in h.reason
    assert s.recommendation.overall is None
    assert s.recommendation.sentence.startswith("No recommendation: no case got an answer")


def test_health_completed_with_errors_and_completed():
    h = health_of({"ok": 9, "error": 1}, [ErrorClassCount(error_class="http_500", count=1, example="boom")])
    assert (h.status, h.error_share) == ("completed_with_errors", 0.1)
    assert "1 of 10 cases (10%) errored" in h.reason and "http_500" in h.reason
    assert health_of({"ok": 5, "over_window": 5}, []).status == "completed"
    assert health_of({"over_window": 5}, []).status == "failed"  # nothing fits: no case got an answer


# -------------------------------------------------------------------------------------- crossover
def _crossover_run(rng, acc_lc, acc_rag, n):
    rows = []
    lengths = [4096 * 2 ** i for i in range(len(acc_lc))]
    for j, (p, q) in enumerate(zip(acc_lc, acc_rag, strict=True)):
        ctx = [lengths[j]] * n
        rows += rows_for("long_context", binary(rng, p, n), ctx=ctx, start=j * n, prompt=lengths[j])
        rows += rows_for("rag", binary(rng, q, n), ctx=ctx, start=j * n, prompt=500)
    return rows


def test_summary_declares_a_real_crossover_with_an_interval():
    rng = np.random.default_rng(3)
    s = summarize(_crossover_run(rng, [0.95, 0.9, 0.5, 0.3], [0.7] * 4, 200), primary="exact_match", n_boot=500)
    co = s.crossovers[0]
    assert co.bucket is not None and co.bucket.label == "≤16K"
    assert co.interval_low is not None and co.interval_low.label == "≤16K"
    assert "overtakes" in co.verdict
    assert all(t.p_adjusted >= t.p_value for t in co.tests)


def test_summary_ties_and_saturation_are_no_crossover():
    rng = np.random.default_rng(4)
    tie = summarize(_crossover_run(rng, [1.0] * 3, [1.0] * 3, 30), primary="exact_match", n_boot=200)
    assert tie.crossovers[0].bucket is None
    assert tie.crossovers[0].verdict.startswith("no evidence of a crossover")
    equal = [summarize(_crossover_run(rng, [0.8] * 6, [0.8] * 6, 20), primary="exact_match", n_boot=100)
             for _ in range(40)]
    assert sum(s.crossovers[0].bucket is not None for s in equal) <= 2


def test_effective_length_per_strategy():
    rng = np.random.default_rng(5)
    s = summarize(_crossover_run(rng, [0.99, 0.97, 0.6, 0.99], [0.7] * 4, 150), primary="exact_match", n_boot=200)
    lc = next(g for g in s.groups if g.strategy == "long_context")
    assert lc.effective_length.length == 8192  # 16K falls below 0.856: 32K does not count
    assert lc.effective_length.threshold == 0.856
    assert lc.effective_length.low in (None, 4096, 8192) and lc.effective_length.high >= 8192
    rag = next(g for g in s.groups if g.strategy == "rag")
    assert rag.effective_length.length is None
    custom = summarize(_crossover_run(rng, [0.99, 0.97, 0.6, 0.99], [0.7] * 4, 150), primary="exact_match",
                       n_boot=100, threshold=0.5)
    assert next(g for g in custom.groups if g.strategy == "rag").effective_length.length == 32768


# --------------------------------------------------------------------------------- recommendation
def test_recommendation_clear_winner_cheaper_is_much_worse():
    rng = np.random.default_rng(6)
    rows = rows_for("long_context", binary(rng, 0.9, 300), cost=0.01) + rows_for("rag", binary(rng, 0.5, 300), cost=0.001)
    rec = summarize(rows, primary="exact_match", n_boot=300).recommendation
    assert rec.overall.outcome == "nothing_within_margin"
    assert rec.overall.pick.strategy == "long_context"
    assert rec.sentence.startswith("Use long_context over all questions: no cheaper strategy is within 2 points")
    assert rec.cost_basis == "cost_usd"


def test_recommendation_tie_within_margin_picks_the_cheaper():
    rng = np.random.default_rng(7)
    base = binary(rng, 0.8, 3000)
    other = list(base)
    for i in rng.choice(3000, 30, replace=False):  # 1% of the answers flip
        other[i] = 1.0 - other[i]
    rows = rows_for("long_context", base, prompt=20000, latency=4.0) + rows_for("rag[k=5]", other, prompt=2200,
                                                                               latency=1.0, name="rag")
    s = summarize(rows, primary="exact_match", n_boot=300)
    rec = s.recommendation
    assert rec.cost_basis == "prompt_tokens"  # no prices: input tokens decide
    assert rec.overall.outcome == "cheaper_within_margin" and rec.overall.pick.strategy == "rag[k=5]"
    assert rec.overall.pick.cost_ratio == pytest.approx(0.11)
    assert rec.overall.pick.latency_ratio == pytest.approx(0.25)
    assert "Use rag[k=5] over all questions: it scores within 2 points of the best" in rec.sentence
    assert "11% of the input tokens and 25% of the latency" in rec.sentence


def test_recommendation_equal_scores_pick_the_cheaper_as_best():
    base = [1.0] * 32 + [0.0] * 8
    rows = rows_for("long_context", base, prompt=20000) + rows_for("rag", base, prompt=2000)
    rec = summarize(rows, primary="exact_match", n_boot=300).recommendation
    assert rec.overall.outcome == "best_is_cheapest" and rec.overall.pick.strategy == "rag"
    assert rec.sentence.startswith("Use rag over all questions: it scores best (exact_match 0.80)")


def test_recommendation_too_few_data_says_how_many_more():
    base = [1.0] * 81 + [0.0] * 19
    cheaper = list(base)
    cheaper[0] = 0.0  # one question worse: 0.80 vs 0.81, within 2 points on the point estimate
    rows = rows_for("long_context", base, prompt=20000) + rows_for("rag", cheaper, prompt=2000)
    rec = summarize(rows, primary="exact_match", n_boot=300).recommendation
    assert rec.overall.outcome == "too_few_data"
    assert rec.overall.pick.strategy == "long_context"
    more = rec.overall.more_questions
    assert more is not None and more > 100
    assert f"about {more} more questions would decide it" in rec.sentence and "for now" in rec.sentence
    rag = next(c for c in rec.overall.candidates if c.strategy == "rag")
    assert rag.verdict == "undecided" and rag.difference.level == pytest.approx(0.9)  # one-sided α = 0.05


def test_recommendation_per_length_bucket():
    rng = np.random.default_rng(10)
    rows = _crossover_run(rng, [0.95, 0.95, 0.3], [0.95, 0.95, 0.9], 400)
    rec = summarize(rows, primary="exact_match", n_boot=300).recommendation
    by = {r.bucket.label: r for r in rec.by_length}
    assert set(by) == {"≤4K", "≤8K", "≤16K"}
    assert by["≤16K"].pick.strategy == "rag"
    assert "at ≤16K tokens" in by["≤16K"].sentence


# ------------------------------------------------------------------------------- import, validate
def test_longbench_v2_import_picks_choice_and_keeps_the_options(tmp_path):
    path = tmp_path / "lb2.jsonl"
    path.write_text('{"_id": "x1", "question": "Which?", "choice_A": "red", "choice_B": "blue", '
                    '"choice_C": "green", "choice_D": "black", "answer": "B", "context": "Some text."}\n')
    suite = import_longbench(path)
    assert suite.default_scorers == ["choice"]
    assert suite.questions[0].metadata["choices"] == ["red", "blue", "green", "black"]
    assert "(B) blue" in suite.questions[0].question


def test_suite_validation_refuses_a_letter_under_exact_match():
    text = ("name: mc\ndefault_scorers: [exact_match]\ndocuments: [{id: d, text: t}]\n"
            "questions: [{id: mc-3, question: 'Which?', answers: ['A']}]\n")
    with pytest.raises(UserInputError) as info:
        parse_suite(text, "yaml", source="mc.yaml")
    assert "mc-3" in str(info.value) and "choice" in str(info.value) and "mc.yaml" in str(info.value)
    parse_suite(text.replace("exact_match", "choice"), "yaml")


def test_a_group_that_answered_nothing_is_never_recommended():
    ok = rows_for("long_context", [1.0] * 20 + [0.0] * 10, endpoint="up", cost=0.01)
    down = rows_for("long_context", [0.0] * 30, endpoint="down", outcomes=[Outcome.error] * 30, prompt=None,
                    errors={i: "connection_error" for i in range(30)})
    s = summarize(ok + down, primary="exact_match", n_boot=200, endpoint_urls={"up": "http://a", "down": "http://b"})
    rec = s.recommendation
    assert rec.cost_basis == "cost_usd"  # the down endpoint's unknown costs do not decide the basis
    assert rec.overall.pick.endpoint == "up"
    assert next(c for c in rec.overall.candidates if c.endpoint == "down").verdict == "unanswered"
    assert s.health.status == "completed_with_errors"
    assert "http://b" in s.health.reason and "http://a" not in s.health.reason  # the URL that failed


def test_verdict_markdown_has_the_sentence_and_numbers():
    from evals.summary import verdict_markdown

    rng = np.random.default_rng(11)
    rows = rows_for("long_context", binary(rng, 0.9, 300), cost=0.01) + rows_for("rag", binary(rng, 0.5, 300),
                                                                               cost=0.001)
    s = summarize(rows, primary="exact_match", n_boot=200)
    md = verdict_markdown(s)
    assert "### Recommendation" in md and s.recommendation.sentence in md
    assert "| e1 | rag | 300 |" in md and "| worse |" in md
    failed = summarize(rows_for("rag", [0.0] * 3, outcomes=[Outcome.error] * 3, errors={0: "x", 1: "x", 2: "x"}),
                       primary="exact_match")
    assert verdict_markdown(failed).startswith("**Status: failed**")


def test_the_ci_markdown_carries_the_recommendation():
    from evals.checks import render_markdown

    rng = np.random.default_rng(12)
    rows = rows_for("long_context", binary(rng, 0.9, 200), cost=0.01) + rows_for("rag", binary(rng, 0.5, 200),
                                                                               cost=0.001)
    s = summarize(rows, primary="exact_match", n_boot=200)
    md = render_markdown(s, [])
    assert "### Recommendation" in md and s.recommendation.sentence in md
    assert md.count("### Recommendation") == 1
