"""Text rendering of a run summary for the terminal (``ctxeval run`` and ``ctxeval demo``), and the
``ctxeval report`` command (table, self-contained HTML, checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evals.diagnostics import AttributionRow, JudgeAgreement
from evals.summary import RunSummary

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


def register(cli: Any) -> None:
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
    ) -> None:
        """Summarise a results file; exit 1 when a check fails, 2 on a usage error."""
        from app.cli import gates
        from evals.checks import parse_checks, validate_checks
        from evals.errors import UserInputError
        from evals.summary import summarize

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
        print_summary(summary, console)
        print_diagnostics(summary, console)
        failure = gates.local_run_failure(rows)
        name = title or f"ctxeval report {results.name}"
        code = gates.finish(gate, rows, summary, console=console, title=name, run_failure=failure)
        if html is not None:
            from app.services.report_html import ReportInput, render_report_html

            page = render_report_html(ReportInput(
                title=name, summary=summary, rows=rows, strategies=strategies, endpoints=endpoints, facts=facts,
                status="failed" if failure else None, error=failure, checks=gate.results,
                recommendation=getattr(summary, "recommendation", None)))
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(page, encoding="utf-8")
            console.print(f"report: {html}")
        if code:
            raise typer.Exit(code)
