"""The report's charts as plotly figures, built in Python and handed to the page as JSON.

Each chart is a :class:`Chart`: a figure, or, when there is nothing to draw, a note saying why. Every
chart carries ``n``, the number of cases behind it, shown in its title.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.services.report import RecallSplit
from evals import CaseRow, GroupSummary, RunSummary, pareto_frontier

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
           "#4b5563", "#65a30d", "#1e3a8a", "#7f1d1d", "#14532d", "#581c87", "#9a3412", "#155e75",
           "#854d0e", "#831843", "#111827", "#3f6212"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "triangle-down", "cross", "pentagon",
           "hexagon"]
OFFSET = 0.07  # horizontal shift between series on a categorical axis, so equal series stay visible
PER_CASES = 1000  # cost is shown per this many cases, so typical values read as cents or dollars
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


@dataclass
class Chart:
    id: str
    title: str
    n: int
    figure: dict[str, Any] | None = None
    note: str | None = None
    caption: str = ""


class Labels:
    """Display names and colours of the run's endpoint × strategy groups, stable across charts."""

    def __init__(self, strategies: Sequence[str], endpoints: Sequence[str]) -> None:
        self.strategies = list(strategies)
        self.endpoints = list(endpoints)

    def name(self, endpoint: str, strategy: str) -> str:
        return strategy if len(self.endpoints) <= 1 else f"{strategy} · {endpoint}"

    def index(self, strategy: str, endpoint: str | None = None) -> int:
        """The group's position among endpoint × strategy (endpoint-major), stable across charts."""
        s = self.strategies.index(strategy) if strategy in self.strategies else len(self.strategies)
        e = self.endpoints.index(endpoint) if endpoint in self.endpoints else 0
        return e * (len(self.strategies) + 1) + s

    def color(self, strategy: str, endpoint: str | None = None) -> str:
        """One colour per endpoint × strategy: the same strategy on two endpoints gets two colours."""
        return PALETTE[self.index(strategy, endpoint) % len(PALETTE)]

    def symbol(self, strategy: str, endpoint: str | None = None) -> str:
        return SYMBOLS[self.index(strategy, endpoint) % len(SYMBOLS)]

    def dash(self, endpoint: str) -> str:
        i = self.endpoints.index(endpoint) if endpoint in self.endpoints else 0
        return ["solid", "dash", "dot", "dashdot"][i % 4]


def _layout(fig: go.Figure, *, x: str, y: str, height: int = 360, **extra: Any) -> None:
    fig.update_layout(
        template="plotly_white", height=height, margin={"l": 60, "r": 20, "t": 40, "b": 50},
        font={"family": FONT, "size": 12, "color": "#1f2937"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 11}},
        xaxis_title=x, yaxis_title=y, hoverlabel={"font_family": FONT}, **extra)


def _plain(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON values (no typed arrays), ready for ``|tojson``."""
    return json.loads(fig.to_json(engine="json"))  # type: ignore[no-any-return]


def _fmt_score(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


# ---------------------------------------------------------------------------------- score × length
def score_by_length(summary: RunSummary, labels: Labels) -> Chart:
    scorer = summary.primary
    cells = [c for c in summary.by_length if scorer and c.scores.get(scorer) and c.scores[scorer].n]
    n = sum(c.n for c in summary.by_length)
    title = f"{scorer or 'score'} by context length"
    if not scorer:
        return Chart("chart-length", title, 0, note="No data because the run has no scorer.")
    if not cells:
        return Chart("chart-length", title, n, note="No data because no scored case records the length of "
                     "its long context (context_tokens).")
    fig = go.Figure()
    series: dict[tuple[str, str], list[Any]] = {}
    for c in cells:
        series.setdefault((c.endpoint, c.strategy), []).append(c)
    # buckets are evenly spaced by rank: power-of-two buckets read as a log scale
    buckets = sorted({(c.bucket.lo, c.bucket.label) for c in summary.by_length})
    position = {lo: i for i, (lo, _) in enumerate(buckets)}
    k = len(series)
    for j, ((endpoint, strategy), members) in enumerate(series.items()):
        members.sort(key=lambda c: c.bucket.lo)
        est = [c.scores[scorer] for c in members]
        shift = (j - (k - 1) / 2) * OFFSET  # series with equal values sit side by side, not on top
        fig.add_trace(go.Scatter(
            x=[position[c.bucket.lo] + shift for c in members], y=[e.mean for e in est], mode="lines+markers",
            name=labels.name(endpoint, strategy),
            line={"color": labels.color(strategy, endpoint), "dash": labels.dash(endpoint), "width": 2},
            marker={"size": 8, "symbol": labels.symbol(strategy, endpoint)},
            error_y={"type": "data", "symmetric": False, "thickness": 1,
                     "array": [(e.high or 0) - (e.mean or 0) for e in est],
                     "arrayminus": [(e.mean or 0) - (e.low or 0) for e in est]},
            customdata=[[c.bucket.label, e.n, _fmt_score(e.low), _fmt_score(e.high)] for c, e in
                        zip(members, est, strict=True)],
            hovertemplate="%{customdata[0]} tokens<br>mean %{y:.3f} [%{customdata[2]}, %{customdata[3]}]"
                          "<br>n = %{customdata[1]}<extra>%{fullData.name}</extra>"))
    by_lo = {b.bucket.lo: b for b in summary.by_length}
    marked = 0
    for co in summary.crossovers:
        if co.bucket is None or co.bucket.lo not in position:
            continue
        marked += 1
        x = position[co.bucket.lo] - 0.5  # the boundary where the strategy starts to keep up
        fig.add_vline(x=x, line={"color": labels.color(co.strategy, co.endpoint), "dash": "dot", "width": 1.5})
        fig.add_annotation(x=x, y=0.62 - 0.08 * marked, yref="paper", xanchor="left", yanchor="bottom",
                           showarrow=False,
                           text=f" crossover: {labels.name(co.endpoint, co.strategy)} > {co.versus} "
                                f"from {by_lo[co.bucket.lo].bucket.label}",
                           font={"size": 11, "color": labels.color(co.strategy, co.endpoint)},
                           bgcolor="rgba(255,255,255,0.85)")
    _layout(fig, x="context length (tokens)", y=f"{scorer} (mean, 95% CI)",
            xaxis={"tickvals": list(range(len(buckets))), "ticktext": [label for _, label in buckets],
                   "range": [-0.5, len(buckets) - 0.5], "zeroline": False},
            yaxis={"range": [-0.05, 1.08]})
    crossed = [c for c in summary.crossovers if c.length is not None]
    caption = ("Dotted lines mark where a strategy becomes significantly better than long context (Holm-adjusted) "
               "and stays not significantly worse at every longer length."
               if crossed else "No evidence of a crossover: no strategy is significantly better than long context "
               "at a length from which it stays not significantly worse (Holm-adjusted).")
    if not summary.crossovers:
        caption = "A crossover needs long_context and another strategy on the same endpoint."
    elif all(c.n_buckets == 0 for c in summary.crossovers):
        caption = "No crossover can be computed: no length bucket has cases of both long context and another strategy."
    return Chart("chart-length", f"{title} (n = {n} cases)", n, _plain(fig), caption=caption)


# ------------------------------------------------------------------------------------- depth grid
def depth_heatmaps(summary: RunSummary, labels: Labels) -> list[Chart]:
    scorer = summary.primary
    groups: dict[tuple[str, str], list[Any]] = {}
    for cell in summary.grid:
        groups.setdefault((cell.endpoint, cell.strategy), []).append(cell)
    if not groups or not scorer:
        why = ("no question in this suite records where its evidence sits (a needle depth), so there is "
               "nothing to place on a depth × length grid." if scorer else "the run has no scorer.")
        return [Chart("chart-depth", "Needle depth × context length", 0, note=f"No data because {why}")]
    charts = []
    for i, ((endpoint, strategy), cells) in enumerate(groups.items()):
        buckets = sorted({(c.bucket.lo, c.bucket.label) for c in cells})
        depths = sorted({c.depth for c in cells})
        col = {b[0]: j for j, b in enumerate(buckets)}
        row = {d: j for j, d in enumerate(depths)}
        z: list[list[float | None]] = [[None] * len(buckets) for _ in depths]
        counts: list[list[int]] = [[0] * len(buckets) for _ in depths]
        for c in cells:
            z[row[c.depth]][col[c.bucket.lo]] = c.scores[scorer].mean if scorer in c.scores else None
            counts[row[c.depth]][col[c.bucket.lo]] = c.scores[scorer].n if scorer in c.scores else 0
        fig = go.Figure(go.Heatmap(
            z=z, x=[b[1] for b in buckets], y=[f"{d:g}%" for d in depths], zmin=0, zmax=1,
            colorscale="RdYlGn", customdata=counts, colorbar={"title": {"text": scorer, "side": "right"}, "thickness": 12},
            hovertemplate="length %{x}<br>depth %{y}<br>mean %{z:.3f}<br>n = %{customdata}<extra></extra>",
            xgap=2, ygap=2))
        fig.update_traces(text=[[("" if v is None else f"{v:.2f}") for v in r] for r in z],
                          texttemplate="%{text}", textfont={"size": 11})
        _layout(fig, x="context length", y="evidence depth", height=300,
                yaxis={"type": "category", "autorange": "reversed"}, xaxis={"type": "category"})
        n = sum(c.n for c in cells)
        charts.append(Chart(f"chart-depth-{i}", f"{labels.name(endpoint, strategy)}: depth × length "
                            f"(n = {n} cases)", n, _plain(fig)))
    return charts


# ------------------------------------------------------------------------------------ cost × score
def cost_vs_score(summary: RunSummary, labels: Labels) -> Chart:
    scorer = summary.primary
    title = f"Cost vs {scorer or 'score'}"
    groups = [g for g in summary.groups if scorer and g.scores.get(scorer) and g.scores[scorer].mean is not None]
    if not groups:
        why = ("no case got an answer (see the run's status)" if summary.health and summary.health.answered == 0
               else "no case has a score yet")
        return Chart("chart-cost", title, 0, note=f"No data because {why}.")
    use_cost = any(g.cost_usd.mean for g in groups)

    def x_of(g: GroupSummary) -> float | None:
        if not use_cost:
            return g.prompt_tokens.mean
        return None if g.cost_usd.mean is None else g.cost_usd.mean * PER_CASES

    points = [(g, x_of(g)) for g in groups]
    unknown = [labels.name(g.endpoint, g.strategy) for g, x in points if x is None]
    points = [(g, x) for g, x in points if x is not None]
    n = sum(g.n for g, _ in points)
    if not points:
        return Chart("chart-cost", title, 0, note="No data because no case reports its cost or its input tokens.")
    fig = go.Figure()
    for g, x in points:
        e = g.scores[scorer or ""]
        fig.add_trace(go.Scatter(
            x=[x], y=[e.mean], mode="markers", name=labels.name(g.endpoint, g.strategy),
            marker={"size": 12, "color": labels.color(g.strategy, g.endpoint),
                    "symbol": labels.symbol(g.strategy, g.endpoint), "line": {"width": 1, "color": "#fff"}},
            error_y={"type": "data", "symmetric": False, "array": [(e.high or 0) - (e.mean or 0)],
                     "arrayminus": [(e.mean or 0) - (e.low or 0)], "thickness": 1},
            customdata=[[g.n, g.prompt_tokens.mean or 0]],
            hovertemplate=(f"%{{x:$,.4f}} per {PER_CASES:,} cases" if use_cost else "%{x:,.0f} input tokens per case")
                          + "<br>mean %{y:.3f}<br>n = %{customdata[0]}<extra>%{fullData.name}</extra>"))
    frontier = pareto_frontier([(float(x or 0.0), g.scores[scorer or ""].mean or 0.0) for g, x in points])
    if frontier:
        fig.add_trace(go.Scatter(
            x=[points[i][1] for i in frontier], y=[points[i][0].scores[scorer or ""].mean for i in frontier],
            mode="lines", name="Pareto frontier", hoverinfo="skip",
            line={"color": "#6b7280", "dash": "dash", "width": 1.5, "shape": "hv"}))
    xlabel = f"cost per {PER_CASES:,} cases (USD)" if use_cost else "input tokens per case (mean)"
    _layout(fig, x=xlabel, y=f"{scorer} (mean, 95% CI)", yaxis={"range": [-0.05, 1.08]},
            xaxis={"tickprefix": "$" if use_cost else "", "range": zero_based_range([x for _, x in points])})
    caption = "Points on the dashed line are not beaten on both cost and score by any other."
    if not use_cost:
        caption = ("The endpoints have no prices, so every cost is 0: input tokens stand in for cost. "
                   + caption)
    if unknown:
        caption += f" Not shown, cost unknown: {', '.join(unknown)}."
    return Chart("chart-cost", f"{title} (n = {n} cases)", n, _plain(fig), caption=caption)


def zero_based_range(values: Sequence[float | None], pad: float = 0.06) -> list[float]:
    """An axis range that includes 0 with room on both sides, so a point at $0 (or 0 tokens) is drawn
    whole instead of being cut by the axis."""
    known = [float(v) for v in values if v is not None]
    top = max([0.0, *known])
    if top == 0:  # everything at 0: a unit-wide axis with 0 inside it
        return [-pad, 1.0 + pad]
    return [-pad * top, top * (1 + pad)]


# ---------------------------------------------------------------------------------- distributions
MAX_OUTLIERS = 200  # outlying points drawn per box; the box itself is computed from every value


def box_stats(values: Sequence[float]) -> dict[str, Any]:
    """Tukey's box of ``values``: quartiles (linear interpolation, plotly's default), whiskers at the
    most extreme values within 1.5 IQR of the box, and the values beyond them (at most
    :data:`MAX_OUTLIERS`, spread evenly over their sorted order, the extremes included)."""
    xs = np.sort(np.asarray(values, dtype=float))
    q1, median, q3 = (float(v) for v in np.percentile(xs, [25, 50, 75]))
    iqr = q3 - q1
    inside = xs[(xs >= q1 - 1.5 * iqr) & (xs <= q3 + 1.5 * iqr)]
    outliers = xs[(xs < inside[0]) | (xs > inside[-1])]
    if len(outliers) > MAX_OUTLIERS:
        outliers = outliers[np.unique(np.linspace(0, len(outliers) - 1, MAX_OUTLIERS).round().astype(int))]
    return {"q1": q1, "median": median, "q3": q3, "lowerfence": float(inside[0]), "upperfence": float(inside[-1]),
            "outliers": [float(v) for v in outliers]}


def distribution(rows: Sequence[CaseRow], labels: Labels, *, metric: str) -> Chart:
    """Box plots of latency or TTFT per endpoint × strategy, computed here: the page gets five numbers
    and a bounded number of outliers per box, not every case's value."""
    title = {"latency_s": "Latency", "ttft_s": "Time to first token"}[metric]
    fig = go.Figure()
    n = 0
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        v = getattr(r, metric)
        if v is not None:
            groups.setdefault((r.endpoint, r.strategy), []).append(v)
    for (endpoint, strategy), values in groups.items():
        n += len(values)
        name = f"{labels.name(endpoint, strategy)} (n={len(values)})"
        box = box_stats(values)
        color = labels.color(strategy, endpoint)
        fig.add_trace(go.Box(y=[name], q1=[box["q1"]], median=[box["median"]], q3=[box["q3"]],
                             lowerfence=[box["lowerfence"]], upperfence=[box["upperfence"]], name=name,
                             orientation="h", marker={"color": color}, line={"width": 1.5}))
        if box["outliers"]:
            fig.add_trace(go.Scatter(x=box["outliers"], y=[name] * len(box["outliers"]), mode="markers", name=name,
                                     marker={"color": color, "size": 5, "symbol": "circle-open"},
                                     hovertemplate="%{x:.3f} s<extra>outlier</extra>"))
    if not n:
        why = ("no case reports its latency" if metric == "latency_s" else
               "no case reports a time to first token (cached or non-streamed answers have none)")
        return Chart(f"chart-{metric}", title, 0, note=f"No data because {why}.")
    _layout(fig, x="seconds", y="", showlegend=False, height=max(200, 90 + 55 * len(groups)),
            yaxis={"automargin": True, "autorange": "reversed"})
    return Chart(f"chart-{metric}", f"{title} (n = {n} cases)", n, _plain(fig))


# ------------------------------------------------------------------------------ retrieval × answer
def recall_chart(splits: Sequence[RecallSplit], labels: Labels, *, has_retrieval: bool,
                 nothing_answered: bool = False) -> Chart:
    title = "Retrieval hits vs answer correctness"
    splits = [s for s in splits if s.n]
    if not splits:
        why = ("the run has no retrieval strategy." if not has_retrieval else
               "no case got an answer (see the run's status)." if nothing_answered else
               "no question has gold evidence, so whether retrieval found it is unknown.")
        return Chart("chart-recall", title, 0, note=f"No data because {why}")
    fig = go.Figure()
    names = [f"{labels.name(s.endpoint, s.strategy)}<br>hit rate {s.hit_rate or 0:.0%}" for s in splits]
    for key, label, color in (("hit", "all evidence retrieved", "#16a34a"), ("miss", "evidence missed", "#dc2626")):
        ys = [getattr(s, f"{key}_score") for s in splits]
        ns = [getattr(s, f"{key}_n") for s in splits]
        fig.add_trace(go.Bar(x=names, y=ys, name=label, marker={"color": color},
                             text=[f"n={k}" for k in ns], textposition="outside", customdata=ns,
                             hovertemplate="%{x}<br>mean %{y:.3f}<br>n = %{customdata}<extra>" + label + "</extra>"))
    scorer = splits[0].scorer
    _layout(fig, x="", y=f"{scorer} (mean)", barmode="group", yaxis={"range": [0, 1.15]})
    n = sum(s.n for s in splits)
    return Chart("chart-recall", f"{title} (n = {n} cases)", n, _plain(fig),
                 caption="Hit = every gold evidence item overlaps a retrieved chunk (retrieval_recall = 1).")
