"""``ctxeval run SPEC.yaml --out results.jsonl``: a headless comparison with a progress bar."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.cli.report import print_diagnostics, print_summary, report_console
from app.cli.runfile import (
    load_run_file,
    load_suite_for,
    resolve_embeddings,
    resolve_endpoints,
    resolve_judge,
)
from evals.cache import SqliteCache
from evals.domain import CaseResult
from evals.errors import UserInputError
from evals.retrieval.base import IndexCache
from evals.runner import Engine, make_spec, plan_cases, run_all
from evals.summary import CaseRow, RunSummary, summarize


def read_finished(path: Path, *, repair: bool = False) -> dict[str, CaseRow]:
    """Cases already in a results file (a crash loses no finished case: re-run with --resume).

    With ``repair``, the file is rewritten without torn or duplicate lines (a crash mid-write leaves
    a partial last line), so appended results start on a line of their own.
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
    if repair:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(g + "\n" for g in good), encoding="utf-8")
        tmp.replace(path)
    return rows


async def run_file(spec_path: Path, out: Path, *, resume: bool, console: Console) -> RunSummary:
    run, base = load_run_file(spec_path)
    endpoints = resolve_endpoints(run, str(spec_path))
    judge = resolve_judge(run, endpoints, str(spec_path))
    embeddings = resolve_embeddings(run, str(spec_path))
    suite = load_suite_for(run, base)
    spec = make_spec(suite, endpoints, run.strategies, run.scorers, system_prompt=run.system_prompt,
                     judge=judge, embeddings=embeddings)
    plans = plan_cases(spec, suite)
    finished = read_finished(out, repair=True) if resume else {}
    finished = {k: v for k, v in finished.items() if k in {p.case_id for p in plans}}
    if not resume and out.exists():
        out.unlink()
    cache = None
    if run.cache:
        cache_path = Path(run.cache) if isinstance(run.cache, str) else Path(".ctxeval/cache.sqlite")
        cache = SqliteCache(cache_path)
    console.print(f"suite [bold]{escape(suite.name)}[/] ({len(suite.questions)} questions, hash {suite.content_hash[:12]}), "
                  f"{len(endpoints)} endpoint(s), {len(spec.strategies)} strategies → {len(plans)} cases"
                  + (f", {len(finished)} already done" if finished else ""))
    rows = dict(finished)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[tokens]} tok  ${task.fields[cost]:.4f}  {task.fields[errors]} errors")]
    # retrieval indexes and corpus token counts, kept for later runs beside the response cache
    index_dir = (Path(run.cache).parent if isinstance(run.cache, str) else Path(".ctxeval")) / "indexes"
    async with Engine(suite=suite, endpoints={e.name: e for e in endpoints}, spec=spec, cache=cache,
                      embeddings=embeddings, judge=judge, index_cache=IndexCache(directory=index_dir)) as engine:
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
    summary = summarize(list(rows.values()), primary=spec.scorers[0] if spec.scorers else None)
    print_summary(summary, console)
    print_diagnostics(summary, console)
    console.print(f"results: {out}")
    return summary


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
    ) -> None:
        """Run a comparison headless and print a per-strategy table."""
        console = report_console()
        try:
            summary = asyncio.run(run_file(spec, out, resume=resume, console=console))
        except UserInputError as e:
            console.print(f"[red]error:[/] {escape(str(e))}")
            raise typer.Exit(2) from e
        if summary_json is not None:
            summary_json.write_text(json.dumps(summary.model_dump(mode="json"), indent=2), encoding="utf-8")
