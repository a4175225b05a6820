"""A run's report as ONE self-contained HTML file: summary, recommendation, checks and charts.

Shared by ``ctxeval report results.jsonl --html FILE`` and the service's ``GET /runs/{id}/report.html``.
Everything the page needs is inside it: the stylesheet, plotly.js from the installed ``plotly``
package, the figures as JSON, and a few lines of script that draw them. It opens from a file, offline,
and sends no request anywhere. Every text from a run (strategy labels, suite names, errors) is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.services import report
from app.web import charts
from app.web.render import STATIC_DIR, templates
from evals import LONG_CONTEXT, NO_CONTEXT, CaseRow, CheckResult, RunSummary

TEMPLATE = "report_standalone.html"


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.min.js as shipped in the installed ``plotly`` package (never a CDN)."""
    import plotly

    return (Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _stylesheet() -> str:
    return (STATIC_DIR / "app.css").read_text(encoding="utf-8")


@dataclass
class ReportInput:
    """What the report shows. ``strategies`` and ``endpoints`` fix the order and colours of the
    groups (default: the order they first appear in ``rows``); ``facts`` are (label, value) lines under
    the title (suite, endpoints, spec hash, …)."""

    title: str
    summary: RunSummary
    rows: Sequence[CaseRow]
    strategies: Sequence[str] | None = None
    endpoints: Sequence[str] | None = None
    facts: Sequence[tuple[str, str]] = ()
    status: str | None = None
    error: str | None = None
    checks: Sequence[CheckResult] = ()
    recommendation: Any = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def build_charts(summary: RunSummary, rows: Sequence[CaseRow], strategies: Sequence[str],
                 endpoints: Sequence[str]) -> dict[str, Any]:
    """The report's charts (the same figures as the dashboard's run page)."""
    labels = charts.Labels(strategies, endpoints)
    has_retrieval = any(r.strategy_name not in (NO_CONTEXT, LONG_CONTEXT) for r in rows)
    return {
        "length": charts.score_by_length(summary, labels),
        "depth": charts.depth_heatmaps(summary, labels),
        "cost": charts.cost_vs_score(summary, labels),
        "latency": charts.distribution(rows, labels, metric="latency_s"),
        "ttft": charts.distribution(rows, labels, metric="ttft_s"),
        "recall": charts.recall_chart(report.recall_vs_answer(list(rows), summary.primary), labels,
                                      has_retrieval=has_retrieval),
    }


def render_report_html(data: ReportInput) -> str:
    """The whole page as one string."""
    strategies = list(data.strategies or dict.fromkeys(r.strategy for r in data.rows))
    endpoints = list(data.endpoints or dict.fromkeys(r.endpoint for r in data.rows))
    figures = build_charts(data.summary, data.rows, strategies, endpoints) if data.rows else None
    return templates.env.get_template(TEMPLATE).render(
        title=data.title, summary=data.summary, charts=figures, endpoints=endpoints, facts=list(data.facts),
        status=data.status, error=data.error, checks=list(data.checks), recommendation=data.recommendation,
        generated_at=data.generated_at, stylesheet=_stylesheet(), plotly_js=plotly_js())
