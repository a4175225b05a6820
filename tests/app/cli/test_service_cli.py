"""``ctxeval migrate``, ``ctxeval token create|list|revoke``, and ``ctxeval serve``'s URL and mode line
and one-line configuration errors."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from app import crud
from app.cli import cli
from app.db import make_engine, session_scope
from tests.app.execution.processes import free_port, serving


def test_migrate_then_tokens(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    r = runner.invoke(cli, ["migrate", "--database-url", url])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.db").exists() and (tmp_path / "c-system.db").exists()

    r = runner.invoke(cli, ["token", "create", "ci", "--database-url", url])
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    assert token.startswith("ctx_") and len(token) > 40
    engine = make_engine(url)
    with session_scope(engine) as s:
        assert crud.find_token(s, token=token).name == "ci"
    r = runner.invoke(cli, ["token", "create", "ci", "--database-url", url])
    assert r.exit_code == 1 and "exists" in r.output

    listed = runner.invoke(cli, ["token", "list", "--database-url", url])
    assert "ci" in listed.output and token not in listed.output
    assert runner.invoke(cli, ["token", "revoke", "ci", "--database-url", url]).exit_code == 0
    with session_scope(engine) as s:
        assert crud.find_token(s, token=token) is None
    engine.dispose()
    assert runner.invoke(cli, ["token", "revoke", "ci", "--database-url", url]).exit_code == 1


# ------------------------------------------------------------------------------ serve: URL, mode, errors

@pytest.mark.parametrize(("args", "fragments"), [
    (["--execution", "inproc"], ["execution 'inproc' is refused", "takes 'inprocess'", "or 'none'"]),
    (["--port", "99999"], ["port '99999' is refused", "--port (or $CTXEVAL_PORT) takes a port number"]),
    (["--auth", "maybe"], ["auth 'maybe' is refused", "takes 'auto'"]),
    (["--database-url", "nonsense"], ["'nonsense' is not a database URL", "sqlite:///path/to/file.db"]),
    (["--database-url", "mysql://u@h/db"], ["database 'mysql://u@h/db' is not supported"]),
    (["--database-url", "postgresql://nobody:pw@127.0.0.1:5432/nodb"],
     ["cannot open the database postgresql://nobody:***@127.0.0.1:5432/nodb", "check the user and password"]),
    (["--database-url", "postgresql://postgres@127.0.0.1:1/nodb"],
     ["cannot open the database postgresql://postgres@127.0.0.1:1/nodb", "is PostgreSQL running"]),
])
def test_configuration_errors_are_one_line_with_the_fix(tmp_path, args, fragments):
    r = CliRunner().invoke(cli, ["serve", *args], env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.output
    for fragment in fragments:
        assert fragment in lines[0]
    assert "pw@" not in r.output  # a password never shows


def test_worker_and_migrate_refuse_a_bad_database_the_same_way():
    for command in (["worker"], ["migrate"]):
        r = CliRunner().invoke(cli, [*command, "--database-url", "nonsense"])
        assert r.exit_code == 2 and r.output.count("\n") == 1 and "is not a database URL" in r.output


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(cli, ["serve", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert r.exit_code == 2 and f"port {port} on 127.0.0.1 is in use; pick another with --port" in r.output
    assert not (tmp_path / "x.db").exists()  # refused before anything was created


def test_serve_prints_the_dashboard_url_and_mode(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with serving(f"sqlite:///{tmp_path / 'c.db'}", port, log, "--execution", "none"):
        text = log.read_text()
    assert f"ctxeval dashboard: http://127.0.0.1:{port}/   API docs: http://127.0.0.1:{port}/docs" in text
    assert f"mode: SQLite {tmp_path / 'c.db'} · runs execute in `ctxeval worker` processes (none here)" in text
    assert "sign-in off" in text
