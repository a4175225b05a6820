"""Plugins by entry point: each loads on its own, a failing one is reported by name and breaks nothing."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest
from typer.testing import CliRunner

from app.cli import cli
from evals import plugins, registry

EPS = [
    importlib.metadata.EntryPoint("good", "tests.evals.plugin_fixtures.good", "ctxeval.strategies"),
    importlib.metadata.EntryPoint("broken", "tests.evals.plugin_fixtures.broken", "ctxeval.strategies"),
    importlib.metadata.EntryPoint("taken", "tests.evals.plugin_fixtures.taken", "ctxeval.retrievers"),
    importlib.metadata.EntryPoint("hook", "tests.evals.plugin_fixtures.hook:register", "ctxeval.scorers"),
]


@pytest.fixture
def fixture_plugins(monkeypatch):
    saved = plugins._status
    for kind in registry.KINDS:
        registry.components(kind)  # built-ins first, as in a real process
    monkeypatch.setattr(plugins, "_entry_points", lambda: EPS)
    for name in [m for m in sys.modules if m.startswith("tests.evals.plugin_fixtures.")]:
        del sys.modules[name]  # imported afresh, so they register again
    plugins.reset_for_tests()
    yield
    registry.unregister("strategy", "shout_fixture")
    registry.unregister("scorer", "always_one_fixture")
    plugins._status = saved


def test_each_plugin_loads_alone_and_failures_name_the_plugin(fixture_plugins):
    found = {p.name: p for p in plugins.statuses()}
    assert found["good"].ok and found["good"].components == ["strategy:shout_fixture"]
    assert found["hook"].ok and found["hook"].components == ["scorer:always_one_fixture"]
    assert not found["broken"].ok and "ModuleNotFoundError" in found["broken"].error
    assert "no_such_module_for_a_ctxeval_plugin" in found["broken"].error
    assert not found["taken"].ok and "retriever 'bm25' is already registered" in found["taken"].error
    assert registry.get("strategy", "shout_fixture").source == "good"
    assert registry.get("retriever", "bm25").source == "ctxeval"  # the built-in kept its name


def test_ctxeval_plugins_lists_them_and_fails_when_one_failed(fixture_plugins):
    res = CliRunner().invoke(cli, ["plugins"])
    assert res.exit_code == 1
    assert "good" in res.output and "strategy:shout_fixture" in res.output
    assert "broken" in res.output and "FAILED: ModuleNotFoundError" in res.output
    listed = CliRunner().invoke(cli, ["components", "strategies"])
    assert "shout_fixture" in listed.output and "(plugin good)" in listed.output
