"""Text rendering of a run summary for the terminal (``ctxeval run`` and ``ctxeval demo``)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evals import AttributionRow, JudgeAgreement, RunSummary

PLAIN_WIDTH = 160  # columns of the tables when the output is a file or a pipe, not a terminal


def report_console() -> Console:
    """A console for the summary tables: the terminal's width, or :data:`PLAIN_WIDTH` columns when the
    output is redirected (rich would otherwise squeeze the tables into 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=PLAIN_WIDTH)


def _num(v: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if v is None else fmt.format(v)


def summary_table(summary: RunSummary, title: str = "Results per strategy") -> Table:
    primary = summary.primary
    t = Table(title=title, show_lines=False)
    for col, justify in [("endpoint", "left"), ("strategy", "left"), ("n", "right"),
                         (f"{primary or 'score'} [95% CI]", "right"), ("prompt tok", "right"),
                         ("cached tok", "right"), ("compl tok", "right"), ("tok share", "right"),
                         ("cost $", "right"), ("latency p50/p95 s", "right"), ("TTFT p50 s", "right"),
                         ("outcomes", "left")]:
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for g in summary.groups:
        est = g.scores.get(primary) if primary else None
        score = "—" if est is None or est.mean is None else f"{est.mean:.2f} [{est.low:.2f}, {est.high:.2f}]"
        outcomes = " ".join(f"{k}={v}" for k, v in g.outcomes.items() if v)
        cached = _num(g.cached_tokens.sum, "{:.0f}") if g.cached_tokens.n else "unknown"
        t.add_row(escape(g.endpoint), escape(g.strategy), str(g.n), score, _num(g.prompt_tokens.sum, "{:.0f}"), cached,
                  _num(g.completion_tokens.sum, "{:.0f}"), _num(g.token_share, "{:.0%}"),
                  _num(g.cost_usd.sum, "{:.4f}"),
                  f"{_num(g.latency_s.p50, '{:.2f}')}/{_num(g.latency_s.p95, '{:.2f}')}",
                  _num(g.ttft_s.p50, "{:.2f}"), outcomes)
    return t


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(summary_table(summary))


def attribution_table(rows: list[AttributionRow]) -> Table:
    t = Table(title="Wrong answers of retrieval strategies: evidence not retrieved vs retrieved but wrong")
    for col in ("endpoint", "strategy", "scorer", "n", "wrong", "not retrieved", "retrieved, wrong",
                "not retrieved share"):
        t.add_column(col, justify="left" if col in ("endpoint", "strategy", "scorer") else "right")
    for r in rows:
        t.add_row(escape(r.endpoint), escape(r.strategy), escape(r.scorer), str(r.n), str(r.wrong), str(r.not_retrieved),
                  str(r.retrieved_wrong), _num(r.not_retrieved_share, "{:.0%}"))
    return t


def agreement_table(rows: list[JudgeAgreement]) -> Table:
    t = Table(title="Judge agreement (Cohen's kappa)")
    for col in ("judge", "versus", "n", "kappa", "agreement"):
        t.add_column(col, justify="left" if col in ("judge", "versus") else "right")
    for a in rows:
        t.add_row(escape(a.judge), escape(a.versus), str(a.n), _num(a.kappa), _num(a.agreement, "{:.0%}"))
    return t


def print_diagnostics(summary: RunSummary, console: Console | None = None) -> None:
    """Error attribution and judge agreement, when the run has what they need."""
    console = console or Console()
    if summary.attribution:
        console.print(attribution_table(summary.attribution))
    if summary.judge_agreement:
        console.print(agreement_table(summary.judge_agreement))


def print_verdict(summary: RunSummary, console: Console | None = None) -> None:
    """The run's status when it is not clean, the crossovers, effective lengths and the recommendation."""
    console = console or Console()
    h = summary.health
    if h is not None and h.status != "completed":
        colour = "red" if h.status == "failed" else "yellow"
        console.print(f"[{colour}]status: {h.status}[/] — {escape(h.reason or '')}")
    for g in summary.groups:
        if g.unanswered:
            parts = ", ".join(f"{v} {k}" for k, v in g.unanswered.items())
            console.print(f"unanswered: {escape(g.strategy)} on {escape(g.endpoint)}: {parts} "
                          f"({g.unanswered_share:.0%}; they score 0)")
    for co in summary.crossovers:
        console.print(f"crossover: {escape(co.verdict)}")
    for g in summary.groups:
        el = g.effective_length
        if el is not None and el.n_buckets > 1:
            point = "none" if el.length is None else str(el.length)
            console.print(f"effective length of {escape(g.strategy)} on {escape(g.endpoint)} ({el.scorer} ≥ "
                          f"{el.threshold:g}): {point} (from {el.low or 'none'} to {el.high or 'none'})")
    rec = summary.recommendation
    if rec is not None:
        console.print(f"[bold]Recommendation:[/] {escape(rec.sentence)}")
        for scope in rec.by_length:
            console.print(f"  {escape(scope.sentence)}")
