"""Run summary and paired comparison on a hand-built run."""

import pytest

from evals.domain import CaseResult, Outcome, Usage
from evals.errors import UserInputError
from evals.summary import CaseRow, LengthBucket, RunSummary, compare, length_bucket, summarize

QUESTIONS = {  # question id: (context tokens, evidence depth)
    "q1": (3000, 0.0), "q2": (3000, 50.0), "q3": (20000, 0.0), "q4": (20000, 50.0)}


def row(q, strategy, em, *, endpoint="e1", name=None, outcome=Outcome.ok, prompt=None, cached=None,
        completion=10, cost=None, latency=None, ttft=None, route=None, f1=None):
    ctx, depth = QUESTIONS[q]
    return CaseRow(case_id=f"{endpoint}-{q}-{strategy}", question_id=q, endpoint=endpoint, strategy=strategy,
                   strategy_name=name or strategy, outcome=outcome, scores={"exact_match": em, "f1": f1},
                   prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion, cost_usd=cost,
                   latency_s=latency, ttft_s=ttft, context_tokens=ctx, depth=depth, route=route)


def run_rows():
    return [
        row("q1", "long_context", 1.0, prompt=3000, cached=0, cost=0.003, latency=1.0, ttft=0.5, f1=1.0),
        row("q2", "long_context", 1.0, prompt=3000, cached=2900, cost=0.001, latency=2.0, ttft=0.2, f1=1.0),
        row("q3", "long_context", 0.0, prompt=20000, cached=None, cost=0.02, latency=3.0, f1=0.5),
        row("q4", "long_context", 0.0, outcome=Outcome.over_window, prompt=20000, cached=19000, cost=0.002,
            latency=4.0, ttft=0.4, f1=0.0),
        row("q1", "rag", 0.0, prompt=500, latency=0.5, ttft=0.1, cost=0.0005, f1=0.4),
        row("q2", "rag", None, outcome=Outcome.error, prompt=None, completion=None, f1=None),
        row("q3", "rag", 1.0, prompt=500, latency=0.5, cost=0.0005, f1=1.0),
        row("q4", "rag", 1.0, prompt=500, latency=0.7, cost=0.0005, f1=0.8),
        row("q1", "self_route", 1.0, prompt=600, route="rag"),
        row("q2", "self_route", 1.0, prompt=3600, route="long_context"),
        row("q3", "self_route", 1.0, prompt=600, route="rag"),
        row("q4", "self_route", 0.0, prompt=20600, route="long_context", outcome=Outcome.declined),
        row("q1", "no_context", 0.0, prompt=50),
        row("q2", "no_context", 0.0, prompt=50, outcome=Outcome.no_answer),
        row("q1", "rag", 1.0, endpoint="e2", prompt=400),
    ]


@pytest.fixture(scope="module")
def summary():
    return summarize(run_rows(), primary="exact_match", n_boot=500)


def group(summary, strategy, endpoint="e1"):
    return next(g for g in summary.groups if g.endpoint == endpoint and g.strategy == strategy)


def test_case_row_from_result():
    result = CaseResult(case_id="c1", question_id="q1", endpoint="e1", strategy="rag[k=5]", strategy_name="rag",
                        answer="long answer text", usage=Usage(prompt_tokens=900, completion_tokens=12,
                                                               cached_tokens=None),
                        latency_s=1.5, ttft_s=0.3, cost_usd=0.01, outcome=Outcome.declined,
                        scores={"f1": 0.5, "retrieval_recall": None}, context_tokens=40000, depth=25.0,
                        route="rag")
    r = CaseRow.from_result(result)
    assert (r.strategy, r.strategy_name, r.outcome, r.route) == ("rag[k=5]", "rag", Outcome.declined, "rag")
    assert (r.prompt_tokens, r.completion_tokens, r.cached_tokens) == (900, 12, None)
    assert (r.latency_s, r.ttft_s, r.cost_usd, r.context_tokens, r.depth) == (1.5, 0.3, 0.01, 40000, 25.0)
    assert r.scores == {"f1": 0.5, "retrieval_recall": None}


def test_groups_in_order_with_counts(summary):
    assert summary.n == 15
    assert summary.primary == "exact_match"
    assert summary.scorers == ["exact_match", "f1"]
    assert [(g.endpoint, g.strategy, g.n) for g in summary.groups] == [
        ("e1", "long_context", 4), ("e1", "rag", 4), ("e1", "self_route", 4), ("e1", "no_context", 2),
        ("e2", "rag", 1)]


def test_outcome_counts(summary):
    assert group(summary, "long_context").outcomes == {
        "ok": 3, "over_window": 1, "declined": 0, "no_answer": 0, "error": 0, "judge_error": 0,
        "cancelled": 0}
    assert group(summary, "rag").outcomes["error"] == 1
    assert group(summary, "self_route").outcomes["declined"] == 1
    assert group(summary, "no_context").outcomes["no_answer"] == 1


def test_scores_count_unanswered_as_wrong_and_carry_n(summary):
    # rag errored on q2 (stored score None): the other strategies scored q2, so it counts 0
    rag = group(summary, "rag").scores["exact_match"]
    assert (rag.mean, rag.n) == (pytest.approx(2 / 4), 4)
    assert rag.low <= rag.mean <= rag.high
    answered = group(summary, "rag").scores_answered["exact_match"]
    assert (answered.mean, answered.n) == (pytest.approx(2 / 3), 3)
    lc = group(summary, "long_context").scores["f1"]
    assert (lc.mean, lc.n) == (pytest.approx(2.5 / 4), 4)


def test_tokens_unknown_cached_counted_apart(summary):
    lc = group(summary, "long_context")
    assert (lc.prompt_tokens.sum, lc.prompt_tokens.mean, lc.prompt_tokens.n) == (46000, 11500, 4)
    assert (lc.cached_tokens.sum, lc.cached_tokens.n, lc.cached_tokens.unknown) == (21900, 3, 1)
    assert lc.cached_tokens.mean == pytest.approx(7300)  # 21900 over the 3 cases that said
    rag = group(summary, "rag")
    assert (rag.prompt_tokens.n, rag.prompt_tokens.unknown, rag.cached_tokens.unknown) == (3, 1, 4)
    assert (rag.completion_tokens.sum, rag.completion_tokens.n) == (30, 3)
    assert lc.cost_usd.sum == pytest.approx(0.026)
    assert rag.cost_usd.mean == pytest.approx(0.0005)


def test_token_share_relative_to_long_context(summary):
    assert group(summary, "long_context").token_share == 1.0
    assert group(summary, "rag").token_share == pytest.approx(500 / 11500)
    assert group(summary, "self_route").token_share == pytest.approx(6350 / 11500)
    assert group(summary, "rag").token_share_versus == "long_context"
    assert group(summary, "rag", "e2").token_share is None  # no long_context on e2


def test_latency_and_ttft_percentiles(summary):
    lc = group(summary, "long_context")
    # latencies 1, 2, 3, 4: p50 = 2.5; p95 at position 2.85 = 3 + 0.85 · 1
    assert (lc.latency_s.p50, lc.latency_s.p95, lc.latency_s.n) == (2.5, pytest.approx(3.85), 4)
    # ttft 0.2, 0.4, 0.5 (one unknown): p50 = 0.4, p95 at position 1.9 = 0.4 + 0.9 · 0.1
    assert (lc.ttft_s.p50, lc.ttft_s.p95, lc.ttft_s.n) == (0.4, pytest.approx(0.49), 3)
    assert group(summary, "self_route").latency_s.p50 is None


def test_route_shares(summary):
    routes = group(summary, "self_route").routes
    assert routes.counts == {"rag": 2, "long_context": 2}
    assert (routes.long_context_share, routes.n) == (0.5, 4)
    assert group(summary, "long_context").routes is None


def test_length_buckets_and_grid(summary):
    cells = [(c.strategy, c.bucket.label, c.n, c.scores["exact_match"].mean, c.scores["exact_match"].n)
             for c in summary.by_length if c.endpoint == "e1" and c.strategy in ("long_context", "rag")]
    assert cells == [("long_context", "≤4K", 2, 1.0, 2), ("long_context", "≤32K", 2, 0.0, 2),
                     ("rag", "≤4K", 2, 0.0, 2), ("rag", "≤32K", 2, 1.0, 2)]
    grid = {(c.bucket.hi, c.depth): (c.n, c.scores["exact_match"].mean)
            for c in summary.grid if c.endpoint == "e1" and c.strategy == "self_route"}
    assert grid == {(4096, 0.0): (1, 1.0), (4096, 50.0): (1, 1.0), (32768, 0.0): (1, 1.0),
                    (32768, 50.0): (1, 0.0)}


def test_crossover_per_retrieval_strategy(summary):
    found = {(c.endpoint, c.strategy): c for c in summary.crossovers}
    assert set(found) == {("e1", "rag"), ("e1", "self_route")}  # not no_context, not e2 (no long context)
    rag = found[("e1", "rag")]  # behind at 4K (0 vs 1), ahead at 32K (1 vs 0), two questions each
    assert (rag.versus, rag.scorer, rag.n_buckets) == ("long_context", "exact_match", 2)
    assert [t.bucket for t in rag.tests] == [LengthBucket(lo=2048, hi=4096, label="≤4K"),
                                             LengthBucket(lo=16384, hi=32768, label="≤32K")]
    # two questions per length prove nothing: no crossover is declared from point means
    assert rag.bucket is None and rag.length is None and rag.verdict.startswith("no evidence of a crossover")
    assert all(t.p_adjusted is not None and t.p_adjusted >= t.p_value for t in rag.tests)
    assert found[("e1", "self_route")].bucket is None


def test_summary_json_round_trip(summary):
    again = RunSummary.model_validate_json(summary.model_dump_json())
    assert again == summary


def test_primary_defaults_to_first_score_name_and_can_be_absent():
    s = summarize(run_rows(), primary=None, n_boot=100)
    assert s.primary == "exact_match"
    s = summarize(run_rows(), primary="f1", n_boot=100)
    assert s.scorers == ["f1", "exact_match"]
    assert {c.scorer for c in s.crossovers} == {"f1"}
    empty = summarize([], primary=None)
    assert (empty.n, empty.groups, empty.crossovers, empty.primary) == (0, [], [], None)


def test_length_buckets_power_of_two_and_given_edges():
    assert length_bucket(4096) == LengthBucket(lo=2048, hi=4096, label="≤4K")
    assert length_bucket(4097) == LengthBucket(lo=4096, hi=8192, label="≤8K")
    assert length_bucket(0).hi == 1 and length_bucket(3).hi == 4
    edges = [1000, 10000]
    assert length_bucket(1000, edges) == LengthBucket(lo=0, hi=1000, label="≤1000")
    assert length_bucket(1001, edges).hi == 10000
    assert length_bucket(50000, edges) == LengthBucket(lo=10000, hi=None, label=">10000")
    s = summarize(run_rows(), primary="exact_match", length_edges=[5000], n_boot=100)
    labels = {c.bucket.label for c in s.by_length}
    assert labels == {"≤5000", ">5000"}
    rag = next(c for c in s.crossovers if c.strategy == "rag")
    assert [t.bucket.label for t in rag.tests] == ["≤5000", ">5000"]
    with pytest.raises(UserInputError):
        summarize(run_rows(), primary=None, length_edges=[0, 10])


# ------------------------------------------------------------------------------------------ compare
def test_compare_pairs_questions_scored_by_both():
    c = compare(run_rows(), "long_context", "rag", scorer="exact_match", endpoint="e1", n_boot=500)
    # rag errored on q2: no answer counts 0. q1 1→0, q2 1→0, q3 0→1, q4 0→1 (over_window: 0 either way)
    assert (c.n, c.wins, c.losses, c.ties) == (4, 2, 2, 0)
    assert c.difference.mean == pytest.approx(0.0)
    assert (c.mean_a, c.mean_b) == (pytest.approx(0.5), pytest.approx(0.5))
    assert c.difference.n == 4
    assert c.mcnemar_p == pytest.approx(1.0)
    assert c.disagreements == ["q1", "q2", "q3", "q4"]
    assert c.endpoints == ["e1"]


def test_compare_continuous_scores_have_no_mcnemar_and_ties_count():
    c = compare(run_rows(), "long_context", "rag", scorer="f1")
    # q1 1.0→0.4, q2 1.0→0 (rag errored), q3 0.5→1.0, q4 0.0→0.8; e2 has no long_context
    assert (c.n, c.wins, c.losses, c.mcnemar_p) == (4, 2, 2, None)
    assert c.difference.mean == pytest.approx((-0.6 - 1.0 + 0.5 + 0.8) / 4)
    same = compare(run_rows(), "self_route", "self_route", scorer="exact_match")
    assert (same.ties, same.disagreements, same.difference.mean) == (4, [], 0.0)


def test_compare_many_discordant_pairs_gives_a_small_p():
    rows = [row("q1", "a", 0.0), row("q1", "b", 1.0)]
    rows = [r.model_copy(update={"question_id": f"x{i}"}) for i in range(12) for r in rows]
    c = compare(rows, "a", "b", scorer="exact_match", n_boot=200)
    assert (c.wins, c.losses) == (12, 0)
    assert c.mcnemar_p == pytest.approx(2 / 2**12)
    # never a zero-width interval: Newcombe's paired interval of 12/12 discordant pairs
    assert c.difference.method == "newcombe" and 0.5 < c.difference.low < 1.0 == c.difference.high


def test_compare_unknown_strategy_lists_the_run_strategies():
    with pytest.raises(UserInputError) as info:
        compare(run_rows(), "long_context", "dense", scorer="exact_match")
    assert "dense" in str(info.value) and "self_route" in str(info.value)


def test_summary_table_keeps_every_column_when_output_is_not_a_terminal(summary, capsys):
    from app.cli.report import PLAIN_WIDTH, print_summary, report_console

    console = report_console()
    assert not console.is_terminal and console.width == PLAIN_WIDTH  # pytest captures stdout
    print_summary(summary, console)
    out = capsys.readouterr().out
    assert "…" not in out and "self_route" in out  # no cell cut short


def test_summary_table_shows_strategy_labels_with_brackets_as_text(capsys):
    from rich.console import Console

    from app.cli.report import print_summary

    rows = [row(q, s, 1.0) for q in ("q1", "q2") for s in ("long_context", "rag[k=2,retriever=dense]")]
    console = Console(width=200, record=True)
    print_summary(summarize(rows, primary="exact_match"), console)
    assert "rag[k=2,retriever=dense]" in console.export_text()
