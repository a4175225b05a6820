"""``ctxeval migrate`` and ``ctxeval token create|list|revoke``."""

from __future__ import annotations

from typer.testing import CliRunner

from app import crud
from app.cli import cli
from app.db import make_engine, session_scope


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
