"""Chart readability: one colour per endpoint × strategy, equal series kept apart, $0 points drawn whole."""

from __future__ import annotations

from app.web import charts
from evals.summary import CaseRow, summarize


def _rows(endpoints=("a", "b"), strategies=("long_context", "rag"), cost=0.0):
    rows = []
    for e in endpoints:
        for s in strategies:
            for i, tokens in enumerate((900, 1900, 3900, 900, 1900, 3900)):
                rows.append(CaseRow(case_id=f"{e}{s}{i}", question_id=f"q{i}", endpoint=e, strategy=s,
                                    strategy_name=s, scores={"em": 1.0}, context_tokens=tokens, cost_usd=cost,
                                    prompt_tokens=100, latency_s=0.1))
    return rows


def test_every_endpoint_strategy_pair_has_its_own_colour_and_marker():
    labels = charts.Labels(["long_context", "rag"], ["a", "b"])
    pairs = [(s, e) for e in ("a", "b") for s in ("long_context", "rag")]
    assert len({labels.color(s, e) for s, e in pairs}) == 4
    assert len({labels.symbol(s, e) for s, e in pairs}) == 4
    summary = summarize(_rows(), primary="em")
    fig = charts.score_by_length(summary, labels).figure
    traces = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert len({t["line"]["color"] for t in traces}) == 4


def test_equal_series_are_offset_so_none_hides_another():
    labels = charts.Labels(["long_context", "rag"], ["a", "b"])
    fig = charts.score_by_length(summarize(_rows(), primary="em"), labels).figure
    traces = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert all(t["y"] == traces[0]["y"] for t in traces)  # every series scores 1.0 everywhere
    firsts = [t["x"][0] for t in traces]
    assert len(set(firsts)) == len(traces) and max(firsts) - min(firsts) < 0.5  # apart, inside the bucket


def test_cost_axis_includes_zero_with_room_for_the_marker():
    labels = charts.Labels(["long_context", "rag"], ["a"])
    summary = summarize(_rows(endpoints=("a",), cost=0.0), primary="em")
    chart = charts.cost_vs_score(summary, labels)  # no prices: tokens stand in, all equal (100)
    lo, hi = chart.figure["layout"]["xaxis"]["range"]
    assert lo < 0 < 100 < hi
    assert charts.zero_based_range([0.0, 0.0]) == [-0.06, 1.06]
    lo, hi = charts.zero_based_range([0.0, 2.5])
    assert lo < 0 and hi > 2.5


def test_a_group_without_a_cost_is_named_under_the_chart():
    labels = charts.Labels(["long_context", "rag"], ["a"])
    summary = summarize(_rows(endpoints=("a",), cost=0.002), primary="em")
    lc = next(g for g in summary.groups if g.strategy == "long_context")
    lc.cost_usd.mean = None
    chart = charts.cost_vs_score(summary, labels)
    assert "Not shown, cost unknown: long_context." in chart.caption
