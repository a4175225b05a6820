"""Checks: pass/fail conditions on a run's results, for CI gates (``ctxeval run --check``, the API).

A check is one line::

    [ENDPOINT/]SUBJECT:SCORER[.STAT] OP VALUE

``SUBJECT`` is a strategy key (``rag``, ``rag[k=5]``, a label), ``A-vs-B`` (the paired difference
A − B on the questions both scored), or ``A-vs-baseline`` (strategy A against the same strategy in a
baseline run, paired on shared questions). ``STAT`` is ``mean`` (default), ``lower`` or ``upper``: the
mean or a bound of its 95% interval (the summary's interval for one strategy, the paired interval for a
difference). ``OP`` is one of ``>= > <= <``. Without ``ENDPOINT/`` a check applies to every endpoint
of the run that has the strategy, and passes only when it passes on each.

Examples: ``rag:subspan_em>=0.7``, ``rag:subspan_em.lower>=0.6``,
``rag-vs-long_context:subspan_em>=-0.02``, ``rag-vs-baseline:f1.lower>=-0.05``, ``local/rag:f1>0.5``.

Everything here is pure: parsing, validation against a run's strategies and scorers, evaluation on
case rows, and the JUnit XML and Markdown renderings of the results. Definitions: ``docs/ci.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from pydantic import BaseModel

from evals.errors import UserInputError
from evals.summary import CaseRow, RunSummary, compare, verdict_markdown

BASELINE = "baseline"
VS = "-vs-"
STATS = ("mean", "lower", "upper")
OPS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
_BASELINE_KEY = "\x00baseline"  # the baseline run's rows, renamed so they never meet a real strategy key

_CHECK_RE = re.compile(r"\s*(?P<lhs>.+?)\s*(?P<op>>=|<=|>|<)\s*"
                       r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*")
SYNTAX = "[ENDPOINT/]STRATEGY[-vs-OTHER|-vs-baseline]:SCORER[.mean|.lower|.upper] (>=|>|<=|<) NUMBER"


class Check(BaseModel):
    """One parsed check; ``text`` is its canonical spelling."""

    text: str
    endpoint: str | None
    strategy: str
    versus: str | None  # another strategy key, or ``baseline``
    scorer: str
    stat: Literal["mean", "lower", "upper"]
    op: Literal[">=", ">", "<=", "<"]
    threshold: float

    @property
    def against_baseline(self) -> bool:
        return self.versus == BASELINE

    @property
    def kind(self) -> Literal["absolute", "difference", "baseline"]:
        if self.versus is None:
            return "absolute"
        return "baseline" if self.against_baseline else "difference"


class CheckResult(BaseModel):
    """One check on one endpoint. ``status`` is ``error`` when it could not be evaluated (for example
    no scored case); an error fails the gate like a failed check."""

    check: str
    endpoint: str | None
    kind: Literal["absolute", "difference", "baseline"]
    status: Literal["passed", "failed", "error"]
    observed: float | None
    threshold: float
    op: str
    stat: str
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def parse_check(text: str, *, source: str | None = None, field: str | None = None) -> Check:
    """Parse one check; a malformed one raises :class:`UserInputError` showing the syntax."""

    def bad(why: str) -> UserInputError:
        return UserInputError(f"check '{text}': {why}; expected {SYNTAX}, e.g. rag:f1>=0.7", source=source,
                              field=field)

    if not isinstance(text, str) or not text.strip():
        raise bad("empty check")
    m = _CHECK_RE.fullmatch(text)
    if m is None:
        raise bad("no comparison with a number")
    lhs, op, value = m.group("lhs"), m.group("op"), float(m.group("value"))
    if not math.isfinite(value):
        raise bad("the threshold is not a finite number")
    subject, sep, metric = lhs.rpartition(":")
    if not sep or not subject.strip() or not metric.strip():
        raise bad("missing ':SCORER' after the strategy")
    endpoint = None
    head, slash, rest = subject.partition("/")
    if slash:
        endpoint, subject = head.strip(), rest
        if not endpoint:
            raise bad("empty endpoint before '/'")
    scorer, dot, stat = metric.strip().rpartition(".")
    if not dot or stat not in STATS:
        scorer, stat = metric.strip(), "mean"
    if not scorer:
        raise bad("empty scorer")
    if not re.fullmatch(r"[\w-]+", scorer):
        raise bad(f"'{scorer}' is not a scorer name")
    strategy, vs, versus = subject.strip().partition(VS)
    strategy, versus = strategy.strip(), versus.strip()
    if not strategy or (vs and not versus):
        raise bad("empty strategy" if not strategy else f"nothing after '{VS}'")
    canonical = (f"{endpoint}/" if endpoint else "") + strategy + (f"{VS}{versus}" if vs else "") + \
        f":{scorer}" + (f".{stat}" if stat != "mean" else "") + f"{op}{m.group('value')}"
    return Check(text=canonical, endpoint=endpoint, strategy=strategy, versus=versus if vs else None,
                 scorer=scorer, stat=stat, op=op, threshold=value)  # type: ignore[arg-type]


def parse_checks(texts: Sequence[str], *, source: str | None = None, field: str = "checks") -> list[Check]:
    return [parse_check(t, source=source, field=f"{field}[{i}]") for i, t in enumerate(texts)]


def validate_checks(checks: Sequence[Check], *, strategies: Sequence[str], scorers: Sequence[str],
                    endpoints: Sequence[str], has_baseline: bool, source: str | None = None,
                    field: str = "checks") -> None:
    """Refuse checks that name a strategy, scorer or endpoint the run does not have, or a baseline
    when none is given. Runs before any case does, so a typo costs nothing."""
    for i, c in enumerate(checks):
        where: dict[str, Any] = {"source": source, "field": f"{field}[{i}]"}
        names = [c.strategy] + ([c.versus] if c.versus and not c.against_baseline else [])
        for name in names:
            if name not in strategies:
                raise UserInputError(f"check '{c.text}': no strategy '{name}' in this run; strategies: "
                                     f"{', '.join(strategies)}", **where)
        if c.versus == c.strategy:
            raise UserInputError(f"check '{c.text}': a strategy compared with itself", **where)
        if c.scorer not in scorers:
            raise UserInputError(f"check '{c.text}': no scorer '{c.scorer}' in this run; scorers: "
                                 f"{', '.join(scorers)}", **where)
        if c.endpoint is not None and c.endpoint not in endpoints:
            raise UserInputError(f"check '{c.text}': no endpoint '{c.endpoint}' in this run; endpoints: "
                                 f"{', '.join(endpoints)}", **where)
        if c.against_baseline and not has_baseline:
            raise UserInputError(f"check '{c.text}' compares with a baseline, but no baseline was given "
                                 "(--baseline RESULTS.jsonl or a stored run id)", **where)


# ------------------------------------------------------------------------------------------ evaluate
def _holds(observed: float, op: str, threshold: float) -> bool:
    return {">=": observed >= threshold, ">": observed > threshold, "<=": observed <= threshold,
            "<": observed < threshold}[op]


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _result(c: Check, endpoint: str, *, mean: float | None, low: float | None, high: float | None, n: int,
            what: str, empty: str) -> CheckResult:
    observed = {"mean": mean, "lower": low, "upper": high}[c.stat]
    label = {"mean": "mean", "lower": "95% CI lower bound", "upper": "95% CI upper bound"}[c.stat]
    common: dict[str, Any] = {"check": c.text, "endpoint": endpoint, "kind": c.kind, "threshold": c.threshold, "op": c.op,
              "stat": c.stat, "mean": mean, "low": low, "high": high, "n": n}
    if observed is None:
        return CheckResult(**common, status="error", observed=None,
                           message=f"{what} on {endpoint}: {empty}")
    ok = _holds(observed, c.op, c.threshold)
    interval = f", 95% CI [{_fmt(low)}, {_fmt(high)}]" if c.stat == "mean" and low is not None else ""
    return CheckResult(**common, status="passed" if ok else "failed", observed=observed,
                       message=f"{what} on {endpoint}: {label} {_fmt(observed)} "
                               f"{'' if ok else 'not '}{OPS[c.op]} {_fmt(c.threshold)} (n = {n}{interval})")


def _endpoints_of(c: Check, rows: Sequence[CaseRow]) -> list[str]:
    present = list(dict.fromkeys(r.endpoint for r in rows if r.strategy == c.strategy))
    if c.endpoint is not None:
        return [c.endpoint]
    return present


def _baseline_rows(baseline: Sequence[CaseRow], strategy: str, endpoint: str) -> list[CaseRow]:
    """The baseline's cases of ``strategy`` on ``endpoint``; when the baseline ran one endpoint of
    another name, that endpoint's (a baseline from another server or model)."""
    mine = [r for r in baseline if r.strategy == strategy]
    names = list(dict.fromkeys(r.endpoint for r in mine))
    if endpoint not in names and len(names) == 1:
        endpoint = names[0]
    return [r.model_copy(update={"strategy": _BASELINE_KEY, "endpoint": "\x00"})
            for r in mine if r.endpoint == endpoint]


def evaluate_checks(checks: Sequence[Check], rows: Sequence[CaseRow], summary: RunSummary, *,
                    baseline: Sequence[CaseRow] | None = None, n_boot: int = 2000,
                    seed: int = 0) -> list[CheckResult]:
    """Each check on each endpoint it applies to, in the order given."""
    out: list[CheckResult] = []
    for c in checks:
        endpoints = _endpoints_of(c, rows)
        if not endpoints:
            out.append(CheckResult(check=c.text, endpoint=c.endpoint, kind=c.kind, status="error",
                                   observed=None, threshold=c.threshold, op=c.op, stat=c.stat,
                                   message=f"no case of strategy '{c.strategy}' in the results"))
            continue
        for ep in endpoints:
            if not any(r.strategy == c.strategy and r.endpoint == ep for r in rows):
                out.append(CheckResult(check=c.text, endpoint=ep, kind=c.kind, status="error", observed=None,
                                       threshold=c.threshold, op=c.op, stat=c.stat,
                                       message=f"no case of strategy '{c.strategy}' on {ep} in the results"))
                continue
            if c.versus is None:
                g = next((g for g in summary.groups if g.endpoint == ep and g.strategy == c.strategy), None)
                est = g.scores.get(c.scorer) if g is not None else None
                out.append(_result(c, ep, mean=est.mean if est else None, low=est.low if est else None,
                                   high=est.high if est else None, n=est.n if est else 0,
                                   what=f"{c.strategy} {c.scorer}",
                                   empty="no case has this score (every case failed or was not scored)"))
                continue
            if c.against_baseline:
                base = _baseline_rows(baseline or [], c.strategy, ep)
                mine = [r.model_copy(update={"endpoint": "\x00"}) for r in rows
                        if r.strategy == c.strategy and r.endpoint == ep]
                pair_rows, a, what = base + mine, _BASELINE_KEY, f"{c.strategy} − baseline {c.strategy} {c.scorer}"
                empty = ("no question scored in both this run and the baseline" if base else
                         f"the baseline has no case of strategy '{c.strategy}'")
                if not base:
                    out.append(CheckResult(check=c.text, endpoint=ep, kind=c.kind, status="error", observed=None,
                                           threshold=c.threshold, op=c.op, stat=c.stat,
                                           message=f"{what} on {ep}: {empty}"))
                    continue
                comp = compare(pair_rows, a, c.strategy, scorer=c.scorer, n_boot=n_boot, seed=seed)
            else:
                what = f"{c.strategy} − {c.versus} {c.scorer}"
                empty = "no question scored by both strategies"
                if not any(r.strategy == c.versus and r.endpoint == ep for r in rows):
                    out.append(CheckResult(check=c.text, endpoint=ep, kind=c.kind, status="error", observed=None,
                                           threshold=c.threshold, op=c.op, stat=c.stat,
                                           message=f"{what} on {ep}: no case of strategy '{c.versus}'"))
                    continue
                comp = compare(rows, str(c.versus), c.strategy, scorer=c.scorer, endpoint=ep, n_boot=n_boot,
                               seed=seed)
            d = comp.difference
            out.append(_result(c, ep, mean=d.mean, low=d.low, high=d.high, n=comp.n, what=what, empty=empty))
    return out


def all_passed(results: Sequence[CheckResult]) -> bool:
    return all(r.passed for r in results)


# ---------------------------------------------------------------------------------------- renderings
def render_junit(results: Sequence[CheckResult], *, suite_name: str = "ctxeval checks",
                 run_failure: str | None = None) -> str:
    """JUnit XML: one test case per check and endpoint (a failed check is a <failure>, one that could
    not be evaluated an <error>), plus a ``run status`` case failing with ``run_failure`` when set."""
    cases: list[str] = []
    failures = errors = 0
    if run_failure is not None:
        failures += 1
        cases.append(f'    <testcase classname="ctxeval.run" name="run status">\n'
                     f'      <failure message={quoteattr(run_failure)}>{xml_escape(run_failure)}</failure>\n'
                     f'    </testcase>')
    for r in results:
        name = r.check + (f" [{r.endpoint}]" if r.endpoint else "")
        head = f'    <testcase classname="ctxeval.checks" name={quoteattr(name)}>'
        if r.status == "passed":
            cases.append(f"{head}\n      <system-out>{xml_escape(r.message)}</system-out>\n    </testcase>")
        elif r.status == "failed":
            failures += 1
            cases.append(f"{head}\n      <failure message={quoteattr(r.message)}>{xml_escape(r.message)}"
                         f"</failure>\n    </testcase>")
        else:
            errors += 1
            cases.append(f"{head}\n      <error message={quoteattr(r.message)}>{xml_escape(r.message)}"
                         f"</error>\n    </testcase>")
    total = len(cases)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites tests="{total}" failures="{failures}" errors="{errors}">\n'
            f'  <testsuite name={quoteattr(suite_name)} tests="{total}" failures="{failures}" '
            f'errors="{errors}">\n' + "\n".join(cases) + ("\n" if cases else "") + "  </testsuite>\n</testsuites>\n")


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell (model-independent, but names come from user files)."""
    return (text.replace("\\", "\\\\").replace("&", "&amp;").replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace("\n", " "))


def _code(text: str) -> str:
    """Text as a code span inside a table cell (no HTML is interpreted there)."""
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def _md_est(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else f"{mean:.3f}"


def render_markdown(summary: RunSummary, results: Sequence[CheckResult], *, title: str = "ctxeval run",
                    status: str | None = None, run_failure: str | None = None) -> str:
    """A Markdown summary for a CI job page: verdict, each check, every scorer per strategy, then the
    run's recommendation and crossovers (:func:`evals.summary.verdict_markdown`)."""
    failed = [r for r in results if not r.passed]
    verdict = "FAILED" if failed or run_failure else "PASSED"
    lines = [f"## {_md(title)}: {verdict}", ""]
    if status:
        lines.append(f"Run status: **{_md(status)}**" + (f": {_md(run_failure)}" if run_failure else ""))
        lines.append("")
    elif run_failure:
        lines += [f"Run failed: {_md(run_failure)}", ""]
    if results:
        lines += [f"### Checks: {len(results) - len(failed)} of {len(results)} passed", "",
                  "| | check | endpoint | observed | n | detail |", "|---|---|---|---:|---:|---|"]
        mark = {"passed": "✅", "failed": "❌", "error": "⚠️"}
        for r in results:
            lines.append(f"| {mark[r.status]} | {_code(r.check)} | {_md(r.endpoint or '')} | "
                         f"{_fmt(r.observed)} | {r.n} | {_md(r.message)} |")
        lines.append("")
    scorers = summary.scorers
    lines += ["### Results per strategy", "",
              "| endpoint | strategy | n | " + " | ".join(f"{_md(s)} [95% CI]" for s in scorers)
              + " | errors | cost $ |",
              "|---|---|---:|" + "---:|" * len(scorers) + "---:|---:|"]
    for g in summary.groups:
        cells = [_md_est(g.scores[s].mean, g.scores[s].low, g.scores[s].high) if s in g.scores else "—"
                 for s in scorers]
        errors = sum(v for k, v in g.outcomes.items() if k in ("error", "judge_error"))
        lines.append(f"| {_md(g.endpoint)} | {_md(g.strategy)} | {g.n} | " + " | ".join(cells)
                     + f" | {errors} | {g.cost_usd.sum:.4f} |")
    verdict = verdict_markdown(summary).strip()
    return "\n".join(lines) + "\n" + (f"\n{verdict}\n" if verdict else "")
