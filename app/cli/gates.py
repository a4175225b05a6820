"""CI gates of ``ctxeval run``: checks from the run file and ``--check``, a baseline run, JUnit XML and
Markdown outputs, and the exit code.

Exit codes: 0 every check passed and the run did not fail; 1 a check failed (or could not be
evaluated) or the run failed; 2 a usage error (bad check, unknown strategy, missing baseline, bad run
file), reported before any case runs. The checks themselves live in :mod:`evals.checks`, shared with
the API. This module is the application side: it reads files and ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from evals import (
    CaseResult,
    CaseRow,
    Check,
    CheckResult,
    RunSpec,
    RunSummary,
    UserInputError,
    evaluate_checks,
    parse_checks,
    render_junit,
    render_markdown,
    validate_checks,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
_RUN_URL = re.compile(r"(?P<server>https?://.+?)(?:/api)?/runs/(?P<id>\d+)/?")


@dataclass
class Baseline:
    rows: list[CaseRow]
    label: str  # what the outputs call it: a file name or "run 12 on http://…"
    run_id: int | None = None  # a stored run on the service the run goes to
    server: str | None = None


@dataclass
class Gate:
    """What ``ctxeval run`` checks after its cases finish, and where it writes the outcome."""

    checks: list[Check] = field(default_factory=list)
    baseline: Baseline | None = None
    junit: Path | None = None
    markdown: Path | None = None
    results: list[CheckResult] = field(default_factory=list)  # set by :func:`finish`

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.checks]


def read_results(path: Path) -> list[CaseRow]:
    """The cases of a results JSONL file (the last line of a case wins, torn lines are skipped)."""
    rows: dict[str, CaseRow] = {}
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise UserInputError("file not found", source=str(path)) from e
    except IsADirectoryError as e:
        raise UserInputError("is a directory, not a results file", source=str(path)) from e
    with fh:
        for line in fh:
            if line.strip():
                try:
                    r = CaseResult.model_validate_json(line)
                except ValueError:
                    continue
                rows[r.case_id] = CaseRow.from_result(r)
    return list(rows.values())


def parse_baseline_ref(ref: str, server: str | None) -> tuple[str, int] | Path:
    """A baseline reference: a results file, a run id on ``server``, or a run's URL on any service."""
    m = _RUN_URL.fullmatch(ref.strip())
    if m:
        return m.group("server"), int(m.group("id"))
    path = Path(ref)
    if ref.strip().isdigit() and not path.exists():
        if server is None:
            raise UserInputError(f"baseline '{ref}' is a run id, which needs --server URL (or give the run's "
                                 "URL, e.g. http://127.0.0.1:8000/runs/12, or a results JSONL file)",
                                 field="baseline")
        return server, int(ref)
    if not path.exists():
        raise UserInputError("baseline results file not found (give a results JSONL file, a run id with "
                             "--server, or a run's URL)", source=str(path), field="baseline")
    return path


def load_baseline(ref: str, *, server: str | None, token: str | None) -> Baseline:
    target = parse_baseline_ref(ref, server)
    if isinstance(target, Path):
        rows = read_results(target)
        if not rows:
            raise UserInputError("the baseline results file holds no case", source=str(target), field="baseline")
        return Baseline(rows=rows, label=str(target))
    from app.cli.remote import ServiceClient

    url, run_id = target
    with ServiceClient(url, token=token) as client:
        rows = client.export_rows(run_id)
    if not rows:
        raise UserInputError(f"baseline run {run_id} on {url} has no case yet", field="baseline")
    same = server is not None and url.rstrip("/") == server.rstrip("/")
    return Baseline(rows=rows, label=f"run {run_id} on {url}", run_id=run_id if same else None, server=url)


def prepare(spec: RunSpec, *, file_checks: Sequence[str], cli_checks: Sequence[str], baseline: str | None,
            junit: Path | None, markdown: Path | None, server: str | None = None, token: str | None = None,
            source: str | None = None) -> Gate:
    """Parse and validate every check against the run's spec, and load the baseline, before a case runs."""
    checks = parse_checks(list(file_checks), source=source, field="checks")
    checks += parse_checks(list(cli_checks), field="--check")
    validate_checks(checks, strategies=[s.key for s in spec.strategies], scorers=list(spec.scorers),
                    endpoints=[e["name"] for e in spec.endpoints], has_baseline=baseline is not None,
                    source=source)
    gate = Gate(checks=checks, junit=junit, markdown=markdown)
    for out in (junit, markdown):
        if out is not None and out.is_dir():
            raise UserInputError("is a directory; give a file to write", source=str(out))
    if baseline is not None:
        gate.baseline = load_baseline(baseline, server=server, token=token)
    return gate


def run_failure(summary: RunSummary, max_error_rate: float = 0.0) -> str | None:
    """Why the run fails its job, one line starting with its status, from the summary's run health: no
    case got an answer (``failed``), or more cases errored than ``max_error_rate`` allows; None when it
    did not fail."""
    h = summary.health
    if h is None or h.n == 0:
        return "run failed: the run has no case" if summary.n == 0 else None
    if h.status == "failed":
        return f"run failed: {h.reason or 'no case got an answer'}"
    if (h.error_share or 0.0) > max_error_rate:
        return (f"run {h.status.replace('_', ' ')}: {h.reason or 'cases errored'}; above --max-error-rate "
                f"{max_error_rate:g}")
    return None


def print_results(results: Sequence[CheckResult], console: Console) -> None:
    if not results:
        return
    passed = sum(r.passed for r in results)
    console.print(f"[bold]Checks: {passed} of {len(results)} passed[/]")
    mark = {"passed": "[green]PASS[/]", "failed": "[red]FAIL[/]", "error": "[red]ERROR[/]"}
    for r in results:
        console.print(f"  {mark[r.status]} {escape(r.check)}: {escape(r.message)}", soft_wrap=False)


def finish(gate: Gate, rows: Sequence[CaseRow], summary: RunSummary, *, console: Console, title: str,
           status: str | None = None, run_failure: str | None = None,
           environ: dict[str, str] | Any = os.environ) -> int:
    """Judge the checks, print them, write the JUnit and Markdown files (and append the Markdown to
    ``$GITHUB_STEP_SUMMARY`` when that is set) and return the exit code."""
    results = evaluate_checks(gate.checks, list(rows), summary,
                              baseline=gate.baseline.rows if gate.baseline else None)
    gate.results = results
    print_results(results, console)
    if gate.baseline is not None and any(c.against_baseline for c in gate.checks):
        console.print(f"baseline: {escape(gate.baseline.label)}")
    if run_failure:
        console.print(f"[red]{escape(run_failure)}[/]")
    written = True
    try:
        if gate.junit is not None:
            _write(gate.junit, render_junit(results, suite_name=title, run_failure=run_failure))
        md = None
        if gate.markdown is not None or environ.get(STEP_SUMMARY_ENV):
            md = render_markdown(summary, results, title=title, status=status, run_failure=run_failure)
        if gate.markdown is not None and md is not None:
            _write(gate.markdown, md)
        step_summary = environ.get(STEP_SUMMARY_ENV)
        if step_summary and md is not None:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(md + "\n")
    except OSError as e:  # an output that cannot be written is a configuration error, said in one line
        console.print(f"[red]error:[/] cannot write {escape(str(e.filename or ''))}: {escape(e.strerror or str(e))}")
        written = False
    failed = [r for r in results if not r.passed]
    if failed or run_failure:
        why = [f"{len(failed)} of {len(results)} checks failed"] if failed else []
        why += ["the run failed"] if run_failure else []
        console.print(f"[red bold]FAILED[/]: {' and '.join(why)}")
        return EXIT_FAILED if written else EXIT_USAGE
    if results:
        console.print(f"[green bold]PASSED[/]: all {len(results)} checks")
    return EXIT_OK if written else EXIT_USAGE


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
