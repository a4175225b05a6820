"""``ctxeval demo``: the whole job on the embedded default (SQLite, in-process execution)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from rich.console import Console

from app.cli.demo import run_demo
from app.localmodel.server import free_port
from app.settings import Settings
from evals.domain import Endpoint
from tests.app.localmodel.test_local_model import require_local_extra


def settings_for(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/demo.db", host="127.0.0.1", port=free_port(),
                    execution="inprocess")


def stored_cases(tmp_path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "demo.db") as db:
        return db.execute('SELECT strategy, outcome, prompt_tokens, latency_s FROM "case"').fetchall()


def test_demo_runs_three_strategies_through_the_service(tmp_path, fake_server):
    endpoint = Endpoint(name="demo", base_url=fake_server.url, model="fake", context_window=8192,
                        max_output_tokens=48, concurrency=2)
    console = Console(record=True, width=200)
    summary = asyncio.run(run_demo(endpoint=endpoint, settings=settings_for(tmp_path), size="tiny",
                                   console=console, keep_serving=False))
    assert {g.strategy for g in summary.groups} == {"long_context", "rag", "self_route"}
    assert all(g.outcomes.get("ok", 0) + g.outcomes.get("declined", 0) == g.n for g in summary.groups)
    out = console.export_text()
    assert "/runs/" in out and "long_context" in out and "self_route" in out
    assert "cases 12/12" in out  # progress lines when the output is not a terminal
    assert "Recommendation:" in out  # the verdict a team came for, under the tables
    assert len(stored_cases(tmp_path)) == 3 * 4
    # a second demo reuses the stored endpoint and the response cache: no new model requests
    before = fake_server.stats()["by_path"].get("/v1/chat/completions", 0)
    settings = settings_for(tmp_path)
    asyncio.run(run_demo(endpoint=endpoint, settings=settings, size="tiny", console=Console(width=200),
                         keep_serving=False))
    assert fake_server.stats()["by_path"].get("/v1/chat/completions", 0) == before


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_against_the_bundled_model(tmp_path):
    require_local_extra()
    from app.localmodel.server import LocalModelServer, local_endpoint

    with LocalModelServer() as server:
        endpoint = local_endpoint(server, name="smollm2", max_output_tokens=32)
        summary = asyncio.run(run_demo(endpoint=endpoint, settings=settings_for(tmp_path), size="tiny",
                                       console=Console(width=200), keep_serving=False))
    assert {g.strategy for g in summary.groups} == {"long_context", "rag", "self_route"}
    rows = stored_cases(tmp_path)
    assert len(rows) == 12
    sent = [r for r in rows if r[1] != "over_window"]
    assert sent and all(r[2] and r[3] is not None for r in sent)  # usage and latency stored
    lc = next(g for g in summary.groups if g.strategy == "long_context")
    assert lc.prompt_tokens.sum > 0 and lc.latency_s.p50 is not None
