"""``ctxeval run SPEC.yaml --out results.jsonl``: a headless comparison with a progress bar, locally or
through a service (``--server``), gated by checks (``--check``, docs/ci.md)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.cli import gates
from app.cli.report import print_diagnostics, print_summary, print_verdict, report_console
from app.cli.runfile import (
    RunFile,
    load_run_file,
    load_suite_for,
    resolve_embeddings,
    resolve_endpoints,
    resolve_judge,
    resolve_secrets,
)
from evals import (
    CasePlan,
    CaseResult,
    CaseRow,
    EmbeddingSettings,
    Endpoint,
    Engine,
    IndexCache,
    Outcome,
    RunSpec,
    RunSummary,
    SqliteCache,
    Suite,
    UserInputError,
    make_spec,
    plan_cases,
    run_all,
    summarize,
)


def read_finished(path: Path, *, repair: bool = False,
                  identities: dict[str, dict[str, Any]] | None = None) -> dict[str, CaseRow]:
    """Cases already in a results file (a crash loses no finished case: re-run with --resume).

    With ``repair``, the file is rewritten without torn or duplicate lines (a crash mid-write leaves
    a partial last line), so appended results start on a line of their own. ``identities``, when
    given, receives each case's stored identity (``metadata["identity"]``).
    """
    rows: dict[str, CaseRow] = {}
    if not path.exists():
        return rows
    good: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                r = CaseResult.model_validate_json(line)
            except ValueError:
                continue  # a torn line from a crash
            if r.case_id not in rows:
                good.append(line)
            rows[r.case_id] = CaseRow.from_result(r)
            if identities is not None:
                identities[r.case_id] = r.metadata.get("identity") or {}
    if repair:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(g + "\n" for g in good), encoding="utf-8")
        tmp.replace(path)
    return rows


def _what_changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The parts of a case identity that differ, e.g. ``model 'a' → 'b'``."""
    if not old:
        return "made by an earlier version without a recorded identity"
    parts = []
    for key in new:
        if old.get(key) == new[key]:
            continue
        if isinstance(new[key], dict) and isinstance(old.get(key), dict):
            sub = [f"{k} {old[key].get(k)!r} → {v!r}" for k, v in new[key].items() if old[key].get(k) != v]
            parts.append(f"{key} " + ", ".join(sub) if key == "strategy" else ", ".join(sub))
        elif key in ("question", "context"):
            parts.append(f"{key} text")
        else:
            parts.append(f"{key} {old.get(key)!r} → {new[key]!r}")
    return "; ".join(parts) or "identity"


def _reusable(plans: list[CasePlan], finished: dict[str, CaseRow], identities: dict[str, dict[str, Any]],
              out: Path, console: Console) -> dict[str, CaseRow]:
    """The finished cases ``--resume`` may keep: those whose full identity matches a planned case and
    that did not error. Cases of another configuration (another model or base URL under the same
    endpoint name, changed strategy parameters, questions or scorers) are run again, and their lines
    move to ``<out>.replaced.jsonl`` so nothing is lost; errored cases are run again."""
    by_id = {p.case_id: p for p in plans}
    by_slot = {(p.question_id, p.endpoint, p.strategy.key): p for p in plans}
    keep: dict[str, CaseRow] = {}
    changed: list[str] = []
    reasons: dict[str, int] = {}
    for case_id, row in finished.items():
        if case_id in by_id:
            if row.outcome != Outcome.error:
                keep[case_id] = row
            continue
        plan = by_slot.get((row.question_id, row.endpoint, row.strategy))
        if plan is not None:
            changed.append(case_id)
            why = _what_changed(identities.get(case_id, {}), plan.identity)
            reasons[why] = reasons.get(why, 0) + 1
    errored = sum(1 for k, r in finished.items() if k in by_id and r.outcome == Outcome.error)
    if changed:
        stale = set(changed)
        moved = out.with_name(out.name + ".replaced.jsonl")
        lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
        with moved.open("a", encoding="utf-8") as fh:
            fh.writelines(line for line in lines if _line_case_id(line) in stale)
        out.write_text("".join(line for line in lines if _line_case_id(line) not in stale), encoding="utf-8")
        why = "; ".join(f"{n} with {r}" for r, n in reasons.items())
        console.print(f"[yellow]resume:[/] {len(changed)} case(s) in {escape(str(out))} were made with another "
                      f"configuration and run again ({escape(why)}); their old lines are in {escape(str(moved))}")
    if errored:
        console.print(f"resume: {errored} errored case(s) are run again")
    return keep


def _line_case_id(line: str) -> str | None:
    try:
        case_id = json.loads(line).get("case_id")
        return case_id if isinstance(case_id, str) else None
    except (ValueError, AttributeError):
        return None


@dataclass
class Prepared:
    """A run file read and resolved: its suite loaded and its spec built, nothing executed yet."""

    path: Path
    run: RunFile
    base: Path
    endpoints: list[Endpoint]
    judge: Endpoint | None
    embeddings: EmbeddingSettings | None
    suite: Suite
    spec: RunSpec


def prepare(spec_path: Path, *, keys: bool = True) -> Prepared:
    """``keys=False`` builds the spec without reading any API key (the spec never holds one)."""
    run, base = load_run_file(spec_path)
    endpoints = resolve_endpoints(run, str(spec_path), keys=keys)
    judge = resolve_judge(run, endpoints, str(spec_path), keys=keys)
    embeddings = resolve_embeddings(run, str(spec_path), keys=keys)
    suite = load_suite_for(run, base)
    spec = make_spec(suite, endpoints, run.strategies, run.scorers, system_prompt=run.system_prompt,
                     judge=judge, embeddings=embeddings, preset=run.preset)
    return Prepared(spec_path, run, base, endpoints, judge, embeddings, suite, spec)


async def run_file(spec_path: Path, out: Path, *, resume: bool, console: Console) -> RunSummary:
    return (await run_prepared(prepare(spec_path), out, resume=resume, console=console))[0]


async def run_prepared(p: Prepared, out: Path, *, resume: bool, console: Console) -> tuple[RunSummary, list[CaseRow]]:
    run, endpoints, judge, embeddings, suite, spec = p.run, p.endpoints, p.judge, p.embeddings, p.suite, p.spec
    plans = plan_cases(spec, suite)
    identities: dict[str, dict[str, Any]] = {}
    finished = read_finished(out, repair=True, identities=identities) if resume else {}
    finished = _reusable(plans, finished, identities, out, console) if finished else {}
    if not resume and out.exists():
        out.unlink()
    cache = None
    if run.cache:
        cache_path = Path(run.cache) if isinstance(run.cache, str) else Path(".ctxeval/cache.sqlite")
        cache = SqliteCache(cache_path)
    console.print(f"suite [bold]{escape(suite.name)}[/] ({len(suite.questions)} questions, hash {suite.content_hash[:12]}), "
                  f"{len(endpoints)} endpoint(s), {len(spec.strategies)} strategies → {len(plans)} cases"
                  + (f", {len(finished)} already done" if finished else ""))
    rows = {k: v for k, v in finished.items() if k in {p.case_id for p in plans}}
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[tokens]} tok  ${task.fields[cost]:.4f}  {task.fields[errors]} errors")]
    # retrieval indexes and corpus token counts, kept for later runs beside the response cache
    index_dir = (Path(run.cache).parent if isinstance(run.cache, str) else Path(".ctxeval")) / "indexes"
    async with Engine(suite=suite, endpoints={e.name: e for e in endpoints}, spec=spec, cache=cache,
                      embeddings=embeddings, judge=judge, secrets=resolve_secrets(spec),
                      index_cache=IndexCache(directory=index_dir)) as engine:
        with Progress(*columns, console=console, transient=False) as progress, out.open("a", encoding="utf-8") as fh:
            task = progress.add_task("cases", total=len(plans), completed=len(finished), tokens=0, cost=0.0,
                                     errors=0)
            tokens, cost, errors = 0, 0.0, 0
            async for result in run_all(engine, plans, skip=finished.keys()):
                fh.write(result.model_dump_json() + "\n")
                fh.flush()
                rows[result.case_id] = CaseRow.from_result(result)
                tokens += (result.usage.prompt_tokens or 0) + (result.usage.completion_tokens or 0)
                cost += result.cost_usd or 0.0
                errors += result.outcome == "error"
                progress.update(task, advance=1, tokens=tokens, cost=cost, errors=errors)
    if cache is not None:
        cache.close()
    summary = summarize(list(rows.values()), primary=spec.scorers[0] if spec.scorers else None,
                        endpoint_urls={e.name: e.base_url for e in endpoints})
    print_summary(summary, console, strategies=[s.key for s in spec.strategies],
                  endpoints=[e["name"] for e in spec.endpoints])
    print_diagnostics(summary, console)
    print_verdict(summary, console)
    console.print(f"results: {out}")
    return summary, list(rows.values())


def _baseline_ref(cli_value: str | None, p: Prepared) -> str | None:
    """--baseline as given, else the run file's (a relative file path is relative to the run file)."""
    if cli_value is not None:
        return cli_value
    ref = p.run.baseline
    if ref is None:
        return None
    ref = str(ref)
    if not ref.isdigit() and "://" not in ref and not Path(ref).is_absolute():
        return str(p.base / ref)
    return ref


def _epilog() -> str:
    """The strategies and scorers a run file may name, read from the registry (plugins included)."""
    from evals import registry

    scorers = [f"{c.name}[:{c.arg}]" if c.arg else c.name for c in registry.components("scorer")]
    return (f"Strategies: {', '.join(registry.names('strategy'))}.\n\n"
            f"Scorers: {', '.join(scorers)}.\n\n"
            "Parameters of each: ctxeval components strategies|scorers.")


def register(cli: typer.Typer) -> None:
    @cli.command("run", epilog=_epilog())
    def run_cmd(
        spec: Path = typer.Argument(..., help="run file (YAML): suite, endpoints, strategies, scorers"),
        out: Path = typer.Option(Path("results.jsonl"), "--out", "-o", help="JSONL file, one case per line"),
        resume: bool = typer.Option(False, "--resume", help="keep the cases already in --out and run the rest"),
        summary_json: Path | None = typer.Option(None, "--summary-json", help="also write the summary as JSON"),
        check: list[str] = typer.Option([], "--check", help="a CI check (repeatable; added to the run file's "
                                        "checks); the forms are listed above"),
        baseline: str | None = typer.Option(None, "--baseline", help="what -vs-baseline checks compare with: a "
                                            "results JSONL file, a run id on --server, or a run's URL"),
        junit: Path | None = typer.Option(None, "--junit", help="write the checks as JUnit XML"),
        markdown: Path | None = typer.Option(None, "--markdown", help="write a Markdown summary (also appended "
                                             "to $GITHUB_STEP_SUMMARY when set)"),
        server: str | None = typer.Option(None, "--server", help="run on this ctxeval "
                                          "service (stored, in its dashboard) and wait for it"),
        token: str | None = typer.Option(None, "--token", envvar="CTXEVAL_TOKEN", help="API token for --server"),
        name: str | None = typer.Option(None, "--name", help="the run's name on the service"),
        max_error_rate: float = typer.Option(
            0.0, "--max-error-rate", min=0.0, max=1.0,
            help="the share of errored cases tolerated before the exit code is 1 (default 0: any error fails)"),
    ) -> None:
        """Run a comparison headless and print a per-strategy table.

        Checks (docs/ci.md):
        rag:f1>=0.7                      a strategy's mean score
        rag:f1.lower>=0.6                its 95% interval's lower bound (or .upper)
        rag-vs-long_context:f1>=-0.02    a paired difference between two strategies
        rag-vs-baseline:f1>=-0.02        against the same strategy in --baseline
        local/rag:f1>=0.7                on one endpoint only

        Exit codes:
        0  the run completed (errors within --max-error-rate) and every check passed
        1  a check failed, the run failed, or more cases errored than --max-error-rate
        2  bad input (run file, check, baseline, service), before any case runs
        """
        console = report_console()
        status: str | None = None
        try:
            prepared = prepare(spec)
            gate = gates.prepare(prepared.spec, file_checks=prepared.run.checks, cli_checks=check,
                                 baseline=_baseline_ref(baseline, prepared), junit=junit, markdown=markdown,
                                 server=server, token=token, source=str(spec))
            if server is not None:
                from app.cli import remote

                if resume:
                    raise UserInputError("--resume is for local runs; a service run is resumed on the service",
                                         field="--resume")
                summary, rows, status, status_failure = remote.run_on_service(
                    prepared, gate, out, server=server, token=token, name=name, console=console)
            else:
                summary, rows = asyncio.run(run_prepared(prepared, out, resume=resume, console=console))
                status_failure = None
        except UserInputError as e:
            console.print(f"[red]error:[/] {escape(str(e))}")
            raise typer.Exit(gates.EXIT_USAGE) from e
        if summary_json is not None:
            summary_json.write_text(json.dumps(summary.model_dump(mode="json"), indent=2), encoding="utf-8")
        failure = status_failure or gates.run_failure(summary, max_error_rate)
        code = gates.finish(gate, rows, summary, console=console, title=name or f"ctxeval run {spec.name}",
                            status=status, run_failure=failure)
        if code:
            raise typer.Exit(code)

