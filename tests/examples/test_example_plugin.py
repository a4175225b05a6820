"""The example plugin package, installed by the test command (``make test``): found by entry point,
listed by ``ctxeval plugins``, and a suite runs with its strategy, retriever and scorer."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from evals import registry
from evals.domain import CaseResult, Outcome

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def installed() -> None:
    try:
        importlib.metadata.distribution("ctxeval-plugin-example")
    except importlib.metadata.PackageNotFoundError:
        message = "the example plugin is not installed: make install-example"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def test_the_plugin_is_loaded_and_listed():
    res = CliRunner().invoke(cli, ["plugins"])
    assert res.exit_code == 0, res.output
    for line in ("keyword_window from ctxeval-plugin-example", "strategy:keyword_window",
                 "retriever:word_overlap", "scorer:answer_in_context"):
        assert line in res.output
    assert registry.get("strategy", "keyword_window").source == "keyword_window"


def test_a_suite_runs_with_the_plugins_components(tmp_path, fake_server):
    spec = yaml.safe_load((ROOT / "examples" / "ctxeval-plugin-example" / "run.yaml").read_text())
    spec["endpoints"] = [{"name": "fake", "base_url": fake_server.url, "model": "fake-model", "concurrency": 4}]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    res = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    results = [CaseResult.model_validate_json(line) for line in out.read_text().splitlines()]
    assert {r.strategy_name for r in results} == {"long_context", "keyword_window", "rag"}
    assert all(r.outcome != Outcome.error for r in results), [r.error_message for r in results]
    assert all(r.scores.get("answer_in_context") is not None for r in results if r.answer.strip())
    kw = [r for r in results if r.strategy_name == "keyword_window"]
    assert all(r.metadata["paragraphs"] <= 2 for r in kw)
    assert all(r.retrieved for r in results if r.strategy_name == "rag")  # word_overlap ranked the chunks
