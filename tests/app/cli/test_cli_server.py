"""``ctxeval run --server`` and ``ctxeval push``: one home for results. A real service (uvicorn, in-process
execution, SQLite) on 127.0.0.1 with auth on, against the fake OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from app import crud
from app.cli import cli
from app.db import make_engine, session_scope
from app.main import create_app
from app.settings import Settings
from evals.domain import CaseResult
from tests.app.cli.test_cli_gates import results, write_run

runner = CliRunner(env={"COLUMNS": "200", "GITHUB_STEP_SUMMARY": "", "CTXEVAL_SERVER": "", "CTXEVAL_TOKEN": ""})
CHAT = "/v1/chat/completions"


@dataclass
class Service:
    url: str
    token: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def service(fresh_sqlite_url) -> Iterator[Service]:
    engine = make_engine(fresh_sqlite_url)
    with session_scope(engine) as session:
        _, token = crud.create_token(session, name="ci")
    engine.dispose()
    settings = Settings(database_url=fresh_sqlite_url, execution="inprocess", queue_polling_interval_s=0.1,
                        auth="on")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield Service(f"http://127.0.0.1:{sock.getsockname()[1]}", token)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        with contextlib.suppress(OSError):
            sock.close()


def invoke(*args):
    return runner.invoke(cli, [str(a) for a in args])


def test_run_through_the_service_stores_it_and_gates_like_a_local_run(tmp_path, fake_server, service):
    spec = write_run(tmp_path, fake_server.url)
    out = tmp_path / "r.jsonl"
    res = invoke("run", spec, "--server", service.url, "--token", service.token, "--out", out, "--name", "ci 1",
                 "--check", "long_context:f1>=0", "--check", "long_context-vs-no_context:f1>=0")
    assert res.exit_code == 0, res.output
    assert f"dashboard: {service.url}/runs/1" in res.output and "Checks: 2 of 2 passed" in res.output
    assert "run 1 completed: 8/8 cases, 0 errors" in res.output  # waited, with progress lines in a CI log
    with service.api() as api:
        run = api.get("/api/runs/1").json()
        assert run["status"] == "completed" and run["name"] == "ci 1"
        assert run["checks"] == ["long_context:f1>=0", "long_context-vs-no_context:f1>=0"]
        assert run["checks_passed"] is True
        exported = api.get("/api/runs/1/export", params={"format": "jsonl"}).text
        assert api.get("/api/runs").json()["count"] == 1  # the runs list the dashboard shows
        endpoint = api.get("/api/endpoints").json()["data"][0]
    assert out.read_text() == exported  # the CLI's results file is the service's export
    assert len(results(out)) == 8
    assert endpoint["name"] == "fake" and endpoint["base_url"] == fake_server.url.removesuffix("/v1")

    # a second run reuses the endpoint and regresses against the first as a stored baseline
    res = invoke("run", spec, "--server", service.url, "--token", service.token, "--out", out,
                 "--baseline", "1", "--check", "long_context-vs-baseline:f1>=0", "--check", "long_context:f1>1")
    assert res.exit_code == 1, res.output
    assert "PASS long_context-vs-baseline:f1>=0" in res.output and "FAIL long_context:f1>1" in res.output
    with service.api() as api:
        run = api.get("/api/runs/2").json()
        assert run["baseline_run_id"] == 1 and run["checks_passed"] is False
        assert [c["status"] for c in run["check_results"]] == ["passed", "failed"]
        assert api.get("/api/endpoints").json()["count"] == 1


def test_service_errors_are_one_line_usage_errors(tmp_path, fake_server, service):
    spec = write_run(tmp_path, fake_server.url)
    res = invoke("run", spec, "--server", service.url, "--out", tmp_path / "r.jsonl")  # no token
    assert res.exit_code == 2 and "needs a valid API token" in res.output and "Traceback" not in res.output
    res = invoke("run", spec, "--server", "http://127.0.0.1:9", "--out", tmp_path / "r.jsonl")
    assert res.exit_code == 2 and "cannot reach the service at http://127.0.0.1:9" in " ".join(res.output.split())
    res = invoke("run", spec, "--server", service.url, "--token", service.token, "--check", "rag:f1>0")
    assert res.exit_code == 2 and "no strategy 'rag'" in res.output
    # an endpoint of the same name elsewhere is never changed behind the user's back
    with service.api() as api:
        api.post("/api/endpoints", json={"name": "fake", "base_url": "http://127.0.0.1:7", "model": "other"})
    res = invoke("run", spec, "--server", service.url, "--token", service.token)
    assert res.exit_code == 2 and "rename it in the run file" in " ".join(res.output.split())
    assert fake_server.stats()["by_path"].get(CHAT, 0) == 0


def test_a_failed_service_run_fails_the_job(tmp_path, service):
    spec = write_run(tmp_path, "http://127.0.0.1:9")
    res = invoke("run", spec, "--server", service.url, "--token", service.token, "--out", tmp_path / "r.jsonl",
                 "--junit", tmp_path / "j.xml")
    assert res.exit_code == 1, res.output
    assert "run failed on the service" in res.output
    assert "run status" in (tmp_path / "j.xml").read_text()


def test_push_imports_a_finished_local_run_with_its_spec(tmp_path, fake_server, service):
    spec = write_run(tmp_path, fake_server.url, checks=["long_context:f1>=0"])
    out = tmp_path / "r.jsonl"
    assert invoke("run", spec, "--out", out).exit_code == 0
    res = invoke("push", out, "--spec", spec, "--server", service.url, "--token", service.token, "--name", "local")
    assert res.exit_code == 0, res.output
    assert f"pushed 8 cases as run 1 completed: {service.url}/runs/1" in " ".join(res.output.split())
    with service.api() as api:
        run = api.get("/api/runs/1").json()
        exported = api.get("/api/runs/1/export", params={"format": "jsonl"}).text
    assert run["name"] == "local" and run["checks_passed"] is True
    back = [CaseResult.model_validate_json(line) for line in exported.splitlines()]
    assert sorted(back, key=lambda r: r.case_id) == sorted(results(out), key=lambda r: r.case_id)
    # a local run gates against the stored run by its URL (the dashboard's address works too)
    for ref in (f"{service.url}/runs/1", f"{service.url}/api/runs/1"):
        res = invoke("run", spec, "--out", tmp_path / "again.jsonl", "--baseline", ref, "--token", service.token,
                     "--check", "long_context-vs-baseline:f1>=0")
        assert res.exit_code == 0, res.output
        assert f"baseline: run 1 on {service.url}" in " ".join(res.output.split())
    res = invoke("run", spec, "--out", tmp_path / "again.jsonl", "--baseline", f"{service.url}/runs/99",
                 "--token", service.token, "--check", "long_context-vs-baseline:f1>=0")
    assert res.exit_code == 2 and "run 99 not found" in res.output
    # a line that is not a case result: which file, line and field
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + '{"case_id": 5}\n')
    res = invoke("push", out, "--spec", spec, "--server", service.url, "--token", service.token)
    assert res.exit_code == 2 and f"{out}, line 2" in " ".join(res.output.split()) and "not a case result" in res.output
    # results of another run file's plan
    spec_other = tmp_path / "other.yaml"
    data = yaml.safe_load(spec.read_text())
    data["strategies"] = [{"name": "no_context", "label": "nc"}]
    spec_other.write_text(yaml.safe_dump(data))
    out.write_text("\n".join(lines) + "\n")
    res = invoke("push", out, "--spec", spec_other, "--server", service.url, "--token", service.token)
    assert res.exit_code == 2 and "is not a case of this spec" in " ".join(res.output.split())
