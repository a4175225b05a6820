"""Text rendering of a run summary for the terminal (``ctxeval run`` and ``ctxeval demo``), and the
``ctxeval report`` command (table, self-contained HTML, checks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from evals import AttributionRow, Estimate, GroupSummary, JudgeAgreement, RunSummary

if TYPE_CHECKING:
    import typer

PLAIN_WIDTH = 160  # columns of the tables when the output is a file or a pipe, not a terminal


def report_console() -> Console:
    """A console for the summary tables: the terminal's width (or ``$COLUMNS``), else :data:`PLAIN_WIDTH`
    columns when the output is redirected (rich would otherwise squeeze the tables into 80)."""
    console = Console()
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console
    return Console(width=PLAIN_WIDTH)


def _num(v: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if v is None else fmt.format(v)


def _est(e: Estimate | None, *, stacked: bool = False) -> str:
    if e is None or e.mean is None:
        return "—"
    if e.low is None or e.high is None:
        return f"{e.mean:.2f}"
    return f"{e.mean:.2f}" + ("\n" if stacked else " ") + f"[{e.low:.2f}, {e.high:.2f}]"


def _ordered(summary: RunSummary, strategies: Sequence[str] | None,
             endpoints: Sequence[str] | None) -> list[GroupSummary]:
    """Groups in the run's order (endpoints, then strategies as the run file lists them), not the
    order their first case happened to finish in."""
    s_rank = {k: i for i, k in enumerate(strategies or [])}
    e_rank = {k: i for i, k in enumerate(endpoints or [])}
    return sorted(summary.groups, key=lambda g: (e_rank.get(g.endpoint, len(e_rank)), g.endpoint if not e_rank else "",
                                                 s_rank.get(g.strategy, len(s_rank)), g.strategy if not s_rank else ""))


def _table(title: str | None, columns: Sequence[tuple[str, str]]) -> Table:
    """Columns fold, never cut: a cell that cannot fit wraps instead of ending in "…"."""
    t = Table(title=title, show_lines=False, title_justify="left")
    for col, justify in columns:
        t.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return t


def _outcomes(g: GroupSummary) -> str:
    return " ".join(f"{k}={v}" for k, v in g.outcomes.items() if v)


def summary_table(summary: RunSummary, title: str = "Results per strategy", *,
                  strategies: Sequence[str] | None = None, endpoints: Sequence[str] | None = None) -> Table:
    """One wide table: every scorer with its interval, tokens, cost, latency and outcomes."""
    t = _table(title, [("endpoint", "left"), ("strategy", "left"), ("n", "right"),
                       *[(f"{s} [95% CI]", "right") for s in summary.scorers or ["score"]],
                       ("prompt tok", "right"), ("cached tok", "right"), ("compl tok", "right"),
                       ("tok share", "right"), ("cost $", "right"), ("latency p50/p95 s", "right"),
                       ("TTFT p50 s", "right"), ("outcomes", "left")])
    for g in _ordered(summary, strategies, endpoints):
        cached = _num(g.cached_tokens.sum, "{:.0f}") if g.cached_tokens.n else "unknown"
        t.add_row(escape(g.endpoint), escape(g.strategy), str(g.n),
                  *[_est(g.scores.get(s)) for s in summary.scorers or ["score"]],
                  _num(g.prompt_tokens.sum, "{:.0f}"), cached, _num(g.completion_tokens.sum, "{:.0f}"),
                  _num(g.token_share, "{:.0%}"), _num(g.cost_usd.sum, "{:.4f}"),
                  f"{_num(g.latency_s.p50, '{:.2f}')}/{_num(g.latency_s.p95, '{:.2f}')}",
                  _num(g.ttft_s.p50, "{:.2f}"), escape(_outcomes(g)))
    return t


def stacked_tables(summary: RunSummary, title: str = "Results per strategy", *,
                   strategies: Sequence[str] | None = None, endpoints: Sequence[str] | None = None,
                   width: int = 80) -> list[Table]:
    """The wide table's content as narrower tables for a narrow terminal: scores (one column per
    scorer, or one row per scorer when they do not fit side by side), then tokens and cost, then
    latency and outcomes. Every scorer and every figure of the wide table is kept."""
    groups = _ordered(summary, strategies, endpoints)
    many = len({g.endpoint for g in groups}) > 1

    def label(g: GroupSummary) -> str:
        return escape(f"{g.endpoint} · {g.strategy}" if many else g.strategy)

    head = [("endpoint · strategy" if many else "strategy", "left")]
    keys = [label(g) for g in groups]
    scorers = summary.scorers or ["score"]
    key_width = max([len(k) for k in keys] + [len(head[0][0])])
    n_width = max([len(str(g.n)) for g in groups] + [1])
    tables = []
    # borders and padding: 3 per column plus 1; a score cell is "0.00" over "[0.00, 1.00]"
    if 4 + key_width + 3 + n_width + sum(max(len(s), 12) + 3 for s in scorers) <= width:
        scores = _table(f"{title}: scores [95% CI]", [*head, ("n", "right"), *[(s, "right") for s in scorers]])
        for g in groups:
            scores.add_row(label(g), str(g.n), *[_est(g.scores.get(s), stacked=True) for s in scorers])
    else:
        scores = _table(f"{title}: scores", [*head, ("scorer", "left"), ("n", "right"), ("mean [95% CI]", "right")])
        for g in groups:
            for i, s in enumerate(scorers):
                e = g.scores.get(s)
                scores.add_row(label(g) if i == 0 else "", escape(s), str(e.n if e else 0), _est(e))
            scores.add_section()
    tables.append(scores)
    cost = _table("Tokens (input, cached input, output; share of long context's input) and cost",
                  [*head, ("input", "right"), ("cached", "right"), ("output", "right"), ("share", "right"),
                   ("cost $", "right")])
    speed = _table("Latency (p50/p95 s), time to first token (p50 s) and outcomes",
                   [*head, ("latency", "right"), ("TTFT", "right"), ("outcomes", "left")])
    for g in groups:
        cached = _num(g.cached_tokens.sum, "{:.0f}") if g.cached_tokens.n else "unknown"
        cost.add_row(label(g), _num(g.prompt_tokens.sum, "{:.0f}"), cached, _num(g.completion_tokens.sum, "{:.0f}"),
                     _num(g.token_share, "{:.0%}"), _num(g.cost_usd.sum, "{:.4f}"))
        speed.add_row(label(g), f"{_num(g.latency_s.p50, '{:.2f}')}/{_num(g.latency_s.p95, '{:.2f}')}",
                      _num(g.ttft_s.p50, "{:.2f}"), escape(_outcomes(g)))
    return [*tables, cost, speed]


def _fits(console: Console, table: Table) -> bool:
    return Measurement.get(console, console.options.update(width=10_000), table).maximum <= console.width


def print_summary(summary: RunSummary, console: Console | None = None, *, strategies: Sequence[str] | None = None,
                  endpoints: Sequence[str] | None = None) -> None:
    """The wide table when it fits the console, else the stacked tables (never a cut cell)."""
    console = console or Console()
    wide = summary_table(summary, strategies=strategies, endpoints=endpoints)
    if _fits(console, wide):
        console.print(wide)
        return
    for t in stacked_tables(summary, strategies=strategies, endpoints=endpoints, width=console.width):
        console.print(t)


def attribution_table(rows: list[AttributionRow]) -> Table:
    many = len({r.endpoint for r in rows}) > 1
    scorers = list(dict.fromkeys(r.scorer for r in rows))
    by_scorer = len(scorers) > 1
    t = _table("Wrong answers of retrieval strategies" + ("" if by_scorer else f" ({scorers[0]} < 0.5)")
               + ": evidence not retrieved (missed) vs retrieved but answered wrong (found)",
               [*([("endpoint", "left")] if many else []), ("strategy", "left"),
                *([("scorer", "left")] if by_scorer else []),
                ("n", "right"), ("wrong", "right"), ("missed", "right"), ("found", "right"), ("missed %", "right")])
    for r in rows:
        t.add_row(*([escape(r.endpoint)] if many else []), escape(r.strategy), *([escape(r.scorer)] if by_scorer else []),
                  str(r.n), str(r.wrong), str(r.not_retrieved), str(r.retrieved_wrong),
                  _num(r.not_retrieved_share, "{:.0%}"))
    return t


def agreement_table(rows: list[JudgeAgreement]) -> Table:
    t = Table(title="Judge agreement (Cohen's kappa)")
    for col in ("judge", "versus", "n", "kappa", "agreement"):
        t.add_column(col, justify="left" if col in ("judge", "versus") else "right", overflow="fold")
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


def register(cli: typer.Typer) -> None:
    """``ctxeval report RESULTS.jsonl``: the summary of a finished run, as a table, a self-contained
    HTML file (``--html``) and Markdown, gated by checks like ``ctxeval run``."""
    import typer

    @cli.command("report")
    def report_cmd(
        results: Path = typer.Argument(..., help="results JSONL written by `ctxeval run` (or a service's export)"),
        html: Path | None = typer.Option(None, "--html", help="write one self-contained HTML report (charts "
                                         "included, nothing loaded from the network)"),
        spec: Path | None = typer.Option(None, "--spec", help="the run file: its strategy order, primary "
                                         "scorer and checks"),
        title: str | None = typer.Option(None, "--title", help="the report's title"),
        check: list[str] = typer.Option([], "--check", help="a CI check (see `ctxeval run --help`)"),
        baseline: str | None = typer.Option(None, "--baseline", help="results file or run URL for "
                                            "-vs-baseline checks"),
        junit: Path | None = typer.Option(None, "--junit", help="write the checks as JUnit XML"),
        markdown: Path | None = typer.Option(None, "--markdown", help="write a Markdown summary"),
        max_error_rate: float = typer.Option(0.0, "--max-error-rate", min=0.0, max=1.0,
                                             help="the share of errored cases tolerated (as for `ctxeval run`)"),
    ) -> None:
        """Summarise a results file; exit 1 when a check fails or the run failed (as `ctxeval run` would
        exit), 2 on a usage error."""
        from app.cli import gates
        from evals import UserInputError, parse_checks, summarize, validate_checks

        console = report_console()
        try:
            rows = gates.read_results(results)
            if not rows:
                raise UserInputError("no case result in this file", source=str(results))
            order: list[str] | None = None
            file_checks: list[str] = []
            primary = None
            facts = [("results", str(results))]
            if spec is not None:
                from app.cli.run import prepare

                p = prepare(spec, keys=False)
                order = [s.key for s in p.spec.strategies]
                primary = p.spec.scorers[0] if p.spec.scorers else None
                file_checks = list(p.run.checks)
                facts += [("suite", f"{p.suite.name} ({len(p.suite.questions)} questions, "
                                    f"hash {p.suite.content_hash[:12]})"),
                          ("endpoints", ", ".join(f"{e['name']} ({e['model']})" for e in p.spec.endpoints))]
            summary = summarize(rows, primary=primary or next((k for r in rows for k in r.scores), None))
            strategies = order or list(dict.fromkeys(r.strategy for r in rows))
            endpoints = list(dict.fromkeys(r.endpoint for r in rows))
            facts += [("strategies", ", ".join(strategies)), ("scorers", ", ".join(summary.scorers)),
                      ("cases", str(len(rows)))]
            checks = parse_checks(file_checks, source=str(spec), field="checks") + parse_checks(check, field="--check")
            validate_checks(checks, strategies=strategies, scorers=summary.scorers, endpoints=endpoints,
                            has_baseline=baseline is not None)
            gate = gates.Gate(checks=checks, junit=junit, markdown=markdown,
                              baseline=gates.load_baseline(baseline, server=None, token=None) if baseline else None)
        except UserInputError as e:
            console.print(f"[red]error:[/] {escape(str(e))}")
            raise typer.Exit(gates.EXIT_USAGE) from e
        print_summary(summary, console, strategies=strategies, endpoints=endpoints)
        print_diagnostics(summary, console)
        print_verdict(summary, console)
        failure = gates.run_failure(summary, max_error_rate)
        name = title or f"ctxeval report {results.name}"
        code = gates.finish(gate, rows, summary, console=console, title=name, run_failure=failure)
        if html is not None:
            from app.services.report_html import ReportInput, render_report_html

            page = render_report_html(ReportInput(
                title=name, summary=summary, rows=rows, strategies=strategies, endpoints=endpoints, facts=facts,
                status=summary.health.status if summary.health else None, error=failure, checks=gate.results,
                recommendation=summary.recommendation))
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(page, encoding="utf-8")
            console.print(f"report: {html}")
        if code:
            raise typer.Exit(code)
