"""``ctxeval demo``: the whole job on the embedded default, with one command.

Starts the bundled model (unless ``--base-url`` points elsewhere), starts the service on SQLite with
in-process execution, generates a small demo suite, runs ``long_context``, ``rag`` and ``self_route``
side by side through the REST API, shows progress all the way, prints the summary table and the
dashboard URL, and keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.report import print_summary, print_verdict, report_console
from app.settings import Settings
from evals import Endpoint, RunSummary

STRATEGIES: list[dict[str, Any]] = [
    {"name": "long_context", "label": "long_context", "params": {"truncation": "error"}},
    {"name": "rag", "label": "rag", "params": {"k": 3, "chunk_tokens": 128, "overlap_tokens": 16}},
    {"name": "self_route", "label": "self_route", "params": {"k": 3, "chunk_tokens": 128, "overlap_tokens": 16}},
]
TERMINAL = {"completed", "failed", "cancelled"}


class DemoError(RuntimeError):
    pass


async def _api(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
    r = await client.request(method, path, **kw)
    if r.status_code >= 400:
        raise DemoError(f"{method} {path} → {r.status_code}: {r.text[:500]}")
    return r.json()


async def _store_endpoint(client: httpx.AsyncClient, endpoint: Endpoint) -> dict[str, Any]:
    """Create the demo endpoint, or point the one a previous demo stored at today's server."""
    fields = endpoint.model_dump(mode="json", exclude={"api_key"})
    listed = await _api(client, "GET", "/api/endpoints", params={"limit": 500})
    for existing in listed["data"]:
        if existing["name"] == endpoint.name:
            changes = {k: v for k, v in fields.items() if k != "name"}
            return await _api(client, "PATCH", f"/api/endpoints/{existing['id']}", json=changes)  # type: ignore[no-any-return]
    return await _api(client, "POST", "/api/endpoints", json=fields)  # type: ignore[no-any-return]


async def _wait_ready(client: httpx.AsyncClient, server: uvicorn.Server, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.started:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/api/health")).status_code == 200:
                    return
        await asyncio.sleep(0.2)
    raise DemoError("the service did not become healthy")


async def run_demo(*, endpoint: Endpoint, settings: Settings, size: str, console: Console,
                   keep_serving: bool) -> RunSummary:
    from app.cli.service import migrate_all
    from app.main import create_app
    from evals import demo_suite, local_tokenizer

    migrate_all(settings)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                                           log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    base = f"http://{settings.host}:{settings.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            await _wait_ready(client, server)
            console.print(f"service on {base} (SQLite: {settings.database_url}, in-process execution)")
            suite = await asyncio.to_thread(demo_suite, local_tokenizer("cl100k"), size=size)  # type: ignore[arg-type]
            console.print(f"demo suite: {len(suite.questions)} questions over {len(suite.documents)} documents")
            ep = await _store_endpoint(client, endpoint)
            stored = await _api(client, "POST", "/api/suites", json=suite.model_dump(mode="json"))
            run = await _api(client, "POST", "/api/runs", json={
                "suite_id": stored["id"], "endpoint_ids": [ep["id"]], "strategies": STRATEGIES,
                "scorers": ["subspan_em", "f1"], "name": "demo: long context vs retrieval"})
            run_id = run["id"]
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("{task.fields[detail]}")]
            # a live bar on a terminal; one line per finished case when the output is a file or a pipe
            with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
                task = progress.add_task("cases", total=run["progress"]["total"], detail="")
                shown = -1
                while True:
                    run = await _api(client, "GET", f"/api/runs/{run_id}")
                    p = run["progress"]
                    detail = f"{p.get('prompt_tokens') or 0} prompt tokens"
                    if p.get("eta_s") is not None:
                        detail += f", about {p['eta_s']:.0f} s left"
                    progress.update(task, completed=p["done"], detail=detail)
                    if not console.is_terminal and p["done"] != shown:
                        shown = p["done"]
                        console.print(f"cases {p['done']}/{p['total']}, {detail}")
                    if run["status"] in TERMINAL:
                        break
                    await asyncio.sleep(1.0)
            if run["status"] != "completed":
                raise DemoError(f"the run ended {run['status']}: {run.get('error') or ''}")
            summary = RunSummary.model_validate(await _api(client, "GET", f"/api/runs/{run_id}/summary"))
            print_summary(summary, console)
            print_verdict(summary, console)
            console.print(f"\nReport: [bold]{base}/runs/{run_id}[/]   (API: {base}/api/runs/{run_id}/summary)")
            if keep_serving:
                console.print("Serving until Ctrl-C.")
                await serving
            return summary
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(serving, timeout=30)


def register(cli: typer.Typer) -> None:
    @cli.command("demo")
    def demo(
        base_url: str | None = typer.Option(None, "--base-url", help="use this OpenAI-compatible endpoint "
                                            "instead of starting the bundled model"),
        model: str = typer.Option("SmolLM2-135M-Instruct", "--model", help="model id (with --base-url)"),
        context_window: int = typer.Option(8192, "--context-window", help="the endpoint's window (with --base-url)"),
        port: int = typer.Option(8000, "--port", help="port of the service"),
        database_url: str | None = typer.Option(None, "--database-url",
                                                help="default: sqlite:///./.ctxeval/ctxeval.db"),
        size: str = typer.Option("small", "--size", help="small (the demo) or tiny (a smoke test)"),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="keep serving the dashboard after the run"),
    ) -> None:
        """Run the whole job locally: bundled model, service, demo suite, comparison, dashboard."""
        console = report_console()
        if size not in ("small", "tiny"):
            console.print("[red]error:[/] --size must be small or tiny")
            raise typer.Exit(2)
        overrides: dict[str, Any] = {"host": "127.0.0.1", "port": port, "execution": "inprocess"}
        if database_url:
            overrides["database_url"] = database_url
        settings = Settings(**overrides)
        with contextlib.ExitStack() as stack:
            if base_url is None:
                from app.localmodel.server import LocalModelServer, local_endpoint
                from evals import UserInputError

                console.print("starting the bundled model (SmolLM2-135M-Instruct, llama.cpp) …")
                try:
                    server = stack.enter_context(LocalModelServer())
                except UserInputError as e:
                    console.print(f"[red]error:[/] {escape(str(e))}")
                    raise typer.Exit(2) from e
                console.print(f"model ready at {server.base_url} in {server.startup_s:.1f} s")
                endpoint = local_endpoint(server, name="smollm2", max_output_tokens=48)
            else:
                endpoint = Endpoint(name="demo-endpoint", base_url=base_url, model=model,
                                    context_window=context_window, max_output_tokens=48, concurrency=2)
            try:
                asyncio.run(run_demo(endpoint=endpoint, settings=settings, size=size, console=console,
                                     keep_serving=serve))
            except KeyboardInterrupt:
                console.print("stopped")
            except DemoError as e:
                console.print(f"[red]error:[/] {escape(str(e))}")
                raise typer.Exit(1) from e
