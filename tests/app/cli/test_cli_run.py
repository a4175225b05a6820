"""End-to-end ``ctxeval run`` against the fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from app.cli import cli
from evals.domain import CaseResult, Outcome
from evals.suites.io import dump_suite
from evals.suites.registry import generate
from evals.tokens import local_tokenizer

runner = CliRunner(env={"COLUMNS": "250"})


def write_run(tmp_path, fake_server, **extra):
    suite = generate("multihop", {"seed": 3, "target_tokens": 4000, "samples": 8}, local_tokenizer("cl100k"))
    dump_suite(suite, tmp_path / "suite.jsonl")
    spec = {
        "suite": "suite.jsonl",
        "endpoints": [{"name": "fake", "base_url": fake_server.url, "model": "fake-model", "concurrency": 4,
                       "price_input": 0.5, "price_cached_input": 0.05, "price_output": 1.5}],
        "strategies": [{"name": "no_context"}, {"name": "long_context"}, {"name": "rag", "params": {"k": 3}},
                       {"name": "self_route", "params": {"k": 3}}],
        "scorers": ["exact_match", "f1"],
        "cache": str(tmp_path / "cache.sqlite"),
        **extra,
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return suite


def test_run_compares_four_strategies_and_writes_every_case(tmp_path, fake_server):
    suite = write_run(tmp_path, fake_server)
    out = tmp_path / "results.jsonl"
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out),
                              "--summary-json", str(tmp_path / "summary.json")])
    assert res.exit_code == 0, res.output
    results = [CaseResult.model_validate_json(line) for line in out.read_text().splitlines()]
    assert len(results) == len(suite.questions) * 4
    assert len({r.case_id for r in results}) == len(results)
    for r in results:
        assert set(r.scores) >= {"exact_match", "f1"}
        assert r.outcome != Outcome.error, r.error_message
        assert r.usage.prompt_tokens and r.latency_s is not None and r.cost_usd is not None
    lc = [r for r in results if r.strategy == "long_context"]
    assert max(r.scores["f1"] for r in lc) > 0  # the fake model answers from its context
    assert len({r.answer for r in lc}) > 1
    assert all(r.route in ("rag", "long_context") for r in results if r.strategy.startswith("self_route"))
    assert any(r.usage.cached_tokens for r in lc)  # shared prefix → the server reports cached tokens
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {g["strategy"] for g in summary["groups"]} == {r.strategy for r in results}
    for word in ("long_context", "exact_match", "cases"):
        assert word in res.output


def test_rerun_costs_no_requests_and_resume_skips_finished_cases(tmp_path, fake_server):
    write_run(tmp_path, fake_server)
    out = tmp_path / "results.jsonl"
    assert runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out)]).exit_code == 0
    first = fake_server.stats()["by_path"].get("/v1/chat/completions", 0)
    assert runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out)]).exit_code == 0
    assert fake_server.stats()["by_path"].get("/v1/chat/completions", 0) == first
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:5]) + "\n" + lines[5][:40], encoding="utf-8")  # a crash mid-write
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    ids = [json.loads(x)["case_id"] for x in out.read_text().splitlines() if x.strip().endswith("}")]
    assert len(ids) == len(set(ids)) == len(lines)


def test_bad_run_file_names_the_line_and_field(tmp_path, fake_server):
    write_run(tmp_path, fake_server)
    text = (tmp_path / "run.yaml").read_text().replace("concurrency: 4", "concurrency: lots")
    (tmp_path / "run.yaml").write_text(text)
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml")])
    assert res.exit_code == 2
    assert "endpoints.0.concurrency" in res.output and "line" in res.output


# ------------------------------------------------------------------------------ honest outcomes
def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _small_run(tmp_path, endpoints, strategies=None):
    suite = generate("multihop", {"seed": 3, "target_tokens": 4000, "samples": 3}, local_tokenizer("cl100k"))
    dump_suite(suite, tmp_path / "suite.jsonl")
    spec = {"suite": "suite.jsonl", "endpoints": endpoints, "scorers": ["exact_match", "f1"],
            "strategies": strategies or [{"name": "no_context"}, {"name": "long_context"}]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return suite


def test_a_run_on_a_down_endpoint_fails_with_the_reason_and_exit_1(tmp_path):
    url = _closed_port_url()
    _small_run(tmp_path, [{"name": "down", "base_url": url, "model": "m", "max_retries": 0}])
    out = tmp_path / "results.jsonl"
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out),
                              "--summary-json", str(tmp_path / "s.json")])
    assert res.exit_code == 1, res.output
    assert "run failed" in res.output and url in res.output and "no case got an answer" in res.output
    results = [CaseResult.model_validate_json(line) for line in out.read_text().splitlines()]
    assert results and all(r.outcome == Outcome.error for r in results)
    assert all(v == 0.0 for r in results for v in r.scores.values())  # unanswered: 0 by definition
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["health"]["status"] == "failed"
    assert summary["health"]["top_errors"][0]["count"] == len(results)


def test_partial_failure_exit_code_follows_max_error_rate(tmp_path, fake_server):
    _small_run(tmp_path, [{"name": "fake", "base_url": fake_server.url, "model": "fake-model"},
                          {"name": "down", "base_url": _closed_port_url(), "model": "m", "max_retries": 0}])
    out = tmp_path / "results.jsonl"
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "status: completed_with_errors" in res.output and "50%" in res.output
    assert "above --max-error-rate 0" in res.output
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out), "--max-error-rate", "0.5"])
    assert res.exit_code == 0, res.output
    assert "status: completed_with_errors" in res.output
    assert "Recommendation:" in res.output


def test_resume_with_another_model_under_the_same_endpoint_name_runs_again(tmp_path, fake_server):
    suite = _small_run(tmp_path, [{"name": "fake", "base_url": fake_server.url, "model": "fake-model"}])
    out = tmp_path / "results.jsonl"
    assert runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out)]).exit_code == 0
    before = fake_server.stats()["by_path"].get("/v1/chat/completions", 0)
    text = (tmp_path / "run.yaml").read_text().replace("model: fake-model", "model: other-model")
    (tmp_path / "run.yaml").write_text(text)
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    n_cases = len(suite.questions) * 2
    assert "already done" not in res.output
    assert f"{n_cases} case(s)" in res.output and "another configuration" in res.output
    assert "'fake-model' → 'other-model'" in res.output
    assert fake_server.stats()["by_path"].get("/v1/chat/completions", 0) > before
    results = [CaseResult.model_validate_json(line) for line in out.read_text().splitlines()]
    assert len(results) == n_cases
    assert {r.metadata["identity"]["endpoint"]["model"] for r in results} == {"other-model"}
    replaced = out.with_name(out.name + ".replaced.jsonl").read_text().splitlines()
    assert len(replaced) == n_cases  # the first model's answers are kept aside, not mixed in
    # the same configuration again: everything is reused
    res = runner.invoke(cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out), "--resume"])
    assert f"{n_cases} already done" in res.output
