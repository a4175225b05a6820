"""The results table at 80 columns: stacked when the wide table does not fit, never a cut cell, every
requested scorer shown, rows in the run file's order."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from app.cli import cli
from evals.suites.io import dump_suite
from evals.suites.registry import generate
from evals.tokens import local_tokenizer

STRATEGIES = [{"name": "rag", "params": {"k": 2, "chunk_tokens": 64}}, {"name": "long_context"},
              {"name": "no_context"}]
KEYS = ["rag[chunk_tokens=64,k=2]", "long_context", "no_context"]


def spec(tmp_path, fake_server, scorers, endpoints=1, strategies=STRATEGIES):
    suite = generate("niah", {"lengths": [1000], "depths": [0, 100]}, local_tokenizer("cl100k"))
    dump_suite(suite, tmp_path / "suite.jsonl")
    data = {"suite": "suite.jsonl", "strategies": strategies, "scorers": scorers,
            "cache": str(tmp_path / "cache.sqlite"),
            "endpoints": [{"name": f"local-server-{i}", "base_url": fake_server.url, "model": "fake-model"}
                          for i in range(endpoints)]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "run.yaml"


def run80(path, tmp_path):
    res = CliRunner(env={"COLUMNS": "80", "GITHUB_STEP_SUMMARY": ""}).invoke(
        cli, ["run", str(path), "--out", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0, res.output
    return res.output


def check_fits(out):
    assert all(len(line) <= 80 for line in out.splitlines()), max(out.splitlines(), key=len)
    assert "…" not in out


def test_scorers_that_fit_side_by_side_get_a_column_each(tmp_path, fake_server):
    scorers = ["exact_match", "f1", "subspan_em"]
    out = run80(spec(tmp_path, fake_server, scorers, strategies=STRATEGIES[1:]), tmp_path)
    check_fits(out)
    head = next(line for line in out.splitlines() if "strategy" in line and "exact_match" in line)
    for s in scorers:
        assert s in head
    assert "Tokens (input" in out and "Latency (p50/p95 s)" in out and "ok=2" in out


def test_a_long_strategy_key_stays_whole_and_rows_keep_the_run_files_order(tmp_path, fake_server):
    out = run80(spec(tmp_path, fake_server, ["exact_match", "f1"]), tmp_path)
    check_fits(out)
    for s in ("exact_match", "f1", "retrieval_recall"):
        assert f" {s} " in out
    for table in out.split("Tokens (input")[0], out.split("Tokens (input")[1].split("Latency (")[0]:
        assert table.index("rag[chunk_tokens=64,k=2]") < table.index("long_context") < table.index("no_context")
    tables = out.split("crossover:")[0]
    assert tables.count("rag[chunk_tokens=64,k=2]") == 4  # scores, tokens, latency, attribution: never folded


def test_many_scorers_and_endpoints_get_a_row_per_scorer(tmp_path, fake_server):
    scorers = ["exact_match", "f1", "subspan_em", "rouge_l", "ruler_all"]
    out = run80(spec(tmp_path, fake_server, scorers, endpoints=2), tmp_path)
    check_fits(out)
    table = out.split("Tokens (input")[0]
    for s in scorers + ["retrieval_recall"]:
        assert table.count(f" {s} ") == 2 * 3, s  # every endpoint × strategy lists every scorer
    assert "local-server-1 · long_context" in table and table.count("rag[chunk_tokens=64,k=2]") == 2
    assert "mean [95% CI]" in table


def test_a_wide_terminal_keeps_one_table_with_every_scorer(tmp_path, fake_server):
    path = spec(tmp_path, fake_server, ["exact_match", "f1"])
    res = CliRunner(env={"COLUMNS": "300", "GITHUB_STEP_SUMMARY": ""}).invoke(
        cli, ["run", str(path), "--out", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0
    head = next(line for line in res.output.splitlines() if "┃ endpoint" in line)
    for col in ("exact_match [95% CI]", "f1 [95% CI]", "retrieval_recall [95% CI]", "cost $", "outcomes"):
        assert col in head
    assert "Tokens (input" not in res.output
