"""The command line talking to a ctxeval service: ``ctxeval run --server URL`` and ``ctxeval push``.

A run file runs the same through a service as locally: its suite is stored there, its endpoints are
created (or matched by name and brought up to date, keys included: keys go to the service, never into
a file or a log), the run is queued with its checks, and the command waits with a progress bar, then
writes the service's export, which is the CLI's own results format, and exits as a local run would.
``push`` stores a finished local run (results file + run file) as a run of the service.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evals import CaseResult, CaseRow, Endpoint, RunSpec, RunSummary, Suite, UserInputError, summarize

if TYPE_CHECKING:
    import typer

ACTIVE = ("queued", "running")
POLL_S = 1.0


def normalise_server(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserInputError(f"'{url}' is not a service URL; give e.g. http://127.0.0.1:8000", field="--server")
    return url[:-4] if url.endswith("/api") else url


def _base(url: str) -> str:
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


class ServiceRefused(UserInputError):
    """A 4xx answer; ``detail`` is the service's error body (message, field, line, source)."""

    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.error = detail


class ServiceClient:
    """JSON calls to the service's API; every failure becomes a one-line :class:`UserInputError`."""

    def __init__(self, server: str, *, token: str | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 120.0) -> None:
        self.server = normalise_server(server)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise UserInputError(f"cannot reach the service at {self.server} ({type(e).__name__}: {e}); is "
                                 "`ctxeval serve` running there, and is --server right?") from e
        if r.status_code == 401:
            raise UserInputError(f"the service at {self.server} needs a valid API token: pass --token (or set "
                                 "CTXEVAL_TOKEN) with a token from `ctxeval token create NAME`")
        if r.status_code >= 400:
            detail: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                detail = r.json().get("error") or {}
            message = detail.get("message") or r.text[:300] or r.reason_phrase
            where = [w for w in (f"line {detail['line']}" if detail.get("line") else None,
                                 f"field '{detail['field']}'" if detail.get("field") else None)
                     if w and w not in message]
            raise ServiceRefused(f"the service refused {method} {path} (HTTP {r.status_code}): {message}"
                                 + (f" [{', '.join(where)}]" if where else ""), detail)
        return r

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.call(method, path, **kw).json()

    # ------------------------------------------------------------------------------------- helpers
    def store_suite(self, suite: Suite) -> int:
        return int(self.json("POST", "/api/suites", json=suite.model_dump(mode="json"))["id"])

    def ensure_endpoint(self, endpoint: Endpoint, *, where: str) -> int:
        """The id of the service's endpoint of this name, created or brought up to date (its key too);
        one of the same name pointing elsewhere is an error, never silently changed."""
        listed = self.json("GET", "/api/endpoints", params={"limit": 1000})["data"]
        mine = endpoint.model_dump(mode="json", exclude={"api_key"})
        key = endpoint.api_key.get_secret_value() if endpoint.api_key else None
        found = next((e for e in listed if e["name"] == endpoint.name), None)
        if found is None:
            body = {**mine, **({"api_key": key} if key else {})}
            return int(self.json("POST", "/api/endpoints", json=body)["id"])
        if _base(found["base_url"]) != _base(endpoint.base_url) or found["model"] != endpoint.model:
            raise UserInputError(
                f"the service's endpoint '{endpoint.name}' is {found['base_url']} · {found['model']}, the run file "
                f"says {endpoint.base_url} · {endpoint.model}: rename it in the run file, or edit the service's",
                field=f"{where}.name")
        changes = {k: v for k, v in mine.items() if k not in ("name", "base_url") and found.get(k) != v}
        if key:
            changes["api_key"] = key
        if changes:
            self.json("PATCH", f"/api/endpoints/{found['id']}", json=changes)
        return int(found["id"])

    def run(self, run_id: int) -> dict[str, Any]:
        return self.json("GET", f"/api/runs/{run_id}")  # type: ignore[no-any-return]

    def export_text(self, run_id: int) -> str:
        return self.call("GET", f"/api/runs/{run_id}/export", params={"format": "jsonl"}).text

    def export_rows(self, run_id: int) -> list[CaseRow]:
        self.run(run_id)  # a 404 names the run
        return [CaseRow.from_result(CaseResult.model_validate_json(line))
                for line in self.export_text(run_id).splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------ run --server
def run_body(run: Any, client: ServiceClient, endpoints: list[Endpoint], judge: Endpoint | None,
             embeddings: Any, suite_id: int, *, name: str | None, checks: list[str],
             baseline_run_id: int | None) -> dict[str, Any]:
    """The ``POST /api/runs`` body of a run file whose endpoints are stored on the service."""
    ids = [client.ensure_endpoint(e, where=f"endpoints[{i}]") for i, e in enumerate(endpoints)]
    body: dict[str, Any] = {"suite_id": suite_id, "endpoint_ids": ids,
                            "strategies": [s.model_dump(mode="json") for s in run.strategies],
                            "scorers": run.scorers, "system_prompt": run.system_prompt, "name": name,
                            "checks": checks, "baseline_run_id": baseline_run_id}
    if judge is not None:
        same = next((i for e, i in zip(endpoints, ids, strict=True) if e.name == judge.name), None)
        body["judge_endpoint_id"] = same or client.ensure_endpoint(judge, where="judge")
    if embeddings is not None:
        emb: dict[str, Any] = {"source": embeddings.source, "model": embeddings.model,
                               "batch_size": embeddings.batch_size}
        if embeddings.endpoint is not None:
            emb["endpoint_id"] = client.ensure_endpoint(embeddings.endpoint, where="embeddings.endpoint")
        body["embeddings"] = emb
    return body


def wait(client: ServiceClient, run_id: int, console: Console, *, poll_s: float = POLL_S,
         line_every_s: float = 10.0) -> dict[str, Any]:
    """Follow the run until it is no longer queued or running: a progress bar on a terminal, a line
    whenever the count moves (at most every ``line_every_s``) in a CI log."""
    run = client.run(run_id)
    if not console.is_terminal:
        last, shown = -1.0, None
        while True:
            p = run["progress"]
            state = (run["status"], p["done"])
            now = time.monotonic()
            if run["status"] not in ACTIVE or (state != shown and now - last >= line_every_s):
                console.print(f"run {run_id} {run['status']}: {p['done']}/{run['total_cases']} cases, "
                              f"{p['outcomes'].get('error', 0)} errors, "
                              f"{p['prompt_tokens'] + p['completion_tokens']} tokens, ${p['cost_usd']:.4f}")
                last, shown = now, state
            if run["status"] not in ACTIVE:
                return run
            time.sleep(poll_s)
            run = client.run(run_id)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[tokens]} tok  ${task.fields[cost]:.4f}  {task.fields[errors]} errors")]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(run["status"], total=run["total_cases"] or None, tokens=0, cost=0.0, errors=0)
        while True:
            p = run["progress"]
            progress.update(task, description=run["status"], completed=p["done"],
                            tokens=p["prompt_tokens"] + p["completion_tokens"], cost=p["cost_usd"],
                            errors=p["outcomes"].get("error", 0))
            if run["status"] not in ACTIVE:
                break
            time.sleep(poll_s)
            run = client.run(run_id)
    return run


def dashboard_url(client: ServiceClient, run_id: int) -> str:
    return f"{client.server}/runs/{run_id}"


def push(results: Path, spec: RunSpec, suite: Suite, client: ServiceClient, *, name: str | None,
         checks: list[str], baseline_run_id: int | None) -> dict[str, Any]:
    """Store the results file as a run of the service; returns the stored run."""
    try:
        text = results.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UserInputError("file not found", source=str(results)) from e
    except UnicodeDecodeError as e:
        raise UserInputError(f"not UTF-8 text (byte {e.start})", source=str(results)) from e
    suite_id = client.store_suite(suite)
    try:
        return client.json("POST", "/api/runs/import", json={  # type: ignore[no-any-return]
            "suite_id": suite_id, "spec": spec.model_dump(mode="json"), "results": text, "name": name,
            "checks": checks, "baseline_run_id": baseline_run_id})
    except ServiceRefused as e:
        if e.error.get("source") == "results":  # the service names the line: say which file it is
            message = str(e.error.get("message", ""))
            raise UserInputError(message.removeprefix("results").lstrip(", ").split(": ", 1)[-1],
                                 source=str(results), line=e.error.get("line"), field=e.error.get("field")) from e
        raise


def describe(run: dict[str, Any], client: ServiceClient) -> str:
    return f"run {run['id']} {escape(run['status'])}: {dashboard_url(client, run['id'])}"


def run_on_service(p: Any, gate: Any, out: Path, *, server: str, token: str | None, name: str | None,
                   console: Console) -> tuple[RunSummary, list[CaseRow], str, str | None]:
    """``ctxeval run --server``: queue the run file's run on the service, wait for it, write its export
    to ``out`` and summarise it as a local run would. Returns (summary, rows, status, failure), failure
    saying why when the service run ended failed or cancelled."""
    from app.cli.report import print_diagnostics, print_summary, print_verdict

    with ServiceClient(server, token=token) as client:
        suite_id = client.store_suite(p.suite)
        body = run_body(p.run, client, p.endpoints, p.judge, p.embeddings, suite_id, name=name,
                        checks=gate.texts, baseline_run_id=gate.baseline.run_id if gate.baseline else None)
        run = client.json("POST", "/api/runs", json=body)
        console.print(f"suite [bold]{escape(p.suite.name)}[/] ({len(p.suite.questions)} questions) → "
                      f"{run['total_cases']} cases, run {run['id']} on {escape(client.server)}")
        console.print(f"dashboard: {dashboard_url(client, run['id'])}")
        try:
            run = wait(client, run["id"], console)
        except KeyboardInterrupt:
            console.print(f"stopped waiting; the run goes on: {dashboard_url(client, run['id'])}")
            raise
        text = client.export_text(run["id"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    rows = [CaseRow.from_result(CaseResult.model_validate_json(line)) for line in text.splitlines() if line.strip()]
    summary = summarize(rows, primary=p.spec.scorers[0] if p.spec.scorers else None,
                        endpoint_urls={e.name: e.base_url for e in p.endpoints})
    print_summary(summary, console, strategies=[s.key for s in p.spec.strategies],
                  endpoints=[e["name"] for e in p.spec.endpoints])
    print_diagnostics(summary, console)
    print_verdict(summary, console)
    console.print(f"results: {out}")
    console.print(describe(run, client))
    failure = None
    if run["status"] in ("failed", "cancelled"):
        failure = f"run {run['status']} on the service" + (f": {run['error']}" if run.get("error") else "")
    return summary, rows, run["status"], failure


def register(cli: typer.Typer) -> None:
    import typer

    @cli.command("push")
    def push_cmd(
        results: Path = typer.Argument(..., help="results JSONL written by `ctxeval run`"),
        spec: Path = typer.Option(..., "--spec", help="the run file the results came from"),
        server: str = typer.Option(..., "--server", help="the ctxeval service's URL"),
        token: str | None = typer.Option(None, "--token", envvar="CTXEVAL_TOKEN", help="API token"),
        name: str | None = typer.Option(None, "--name", help="the run's name on the service"),
    ) -> None:
        """Store a finished CLI run (results file + run file) on a service, with its checks."""
        from app.cli.report import report_console
        from app.cli.run import prepare

        console = report_console()
        try:
            p = prepare(spec, keys=False)
            from evals import parse_checks

            checks = [c.text for c in parse_checks(p.run.checks, source=str(spec))]
            with ServiceClient(server, token=token) as client:
                run = push(results, p.spec, p.suite, client, name=name, checks=checks, baseline_run_id=None)
                console.print(f"pushed {run['progress']['done']} cases as {describe(run, client)}")
        except UserInputError as e:
            console.print(f"[red]error:[/] {escape(str(e))}")
            raise typer.Exit(2) from e
        if run.get("error"):
            console.print(escape(run["error"]))
