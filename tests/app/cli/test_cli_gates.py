"""``ctxeval run`` as a CI gate: every check form and exit code, baselines, JUnit and Markdown outputs,
and ``ctxeval report`` on a results file. Against the fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from evals.domain import CaseResult
from evals.suites.io import dump_suite
from evals.suites.registry import generate
from evals.tokens import local_tokenizer

runner = CliRunner(env={"COLUMNS": "200", "GITHUB_STEP_SUMMARY": ""})
CHAT = "/v1/chat/completions"


MULTIHOP = ("multihop", {"seed": 3, "target_tokens": 4000, "samples": 4})
# four needle questions the fake model answers from the context (it answers none of multihop's two hops)
NIAH = ("niah", {"lengths": [1000], "depths": [0, 33, 66, 100]})


def write_run(tmp_path, base_url, generator=MULTIHOP, **extra):
    suite = generate(*generator, local_tokenizer("cl100k"))
    dump_suite(suite, tmp_path / "suite.jsonl")
    spec = {
        "suite": "suite.jsonl",
        "endpoints": [{"name": "fake", "base_url": base_url, "model": "fake-model", "concurrency": 4}],
        "strategies": [{"name": "no_context"}, {"name": "long_context"}],
        "scorers": ["f1", "exact_match"],
        "cache": str(tmp_path / "cache.sqlite"),
        **extra,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def run(*args, env=None):
    return runner.invoke(cli, ["run", *map(str, args)], env=env)


def results(path):
    return [CaseResult.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


def mean(rows, strategy, scorer="f1"):
    vals = [r.scores[scorer] for r in rows if r.strategy == strategy and r.scores.get(scorer) is not None]
    return sum(vals) / len(vals)


@pytest.fixture
def spec(tmp_path, fake_server):
    return write_run(tmp_path, fake_server.url)


def test_passing_checks_exit_0_and_say_why(tmp_path, spec):
    out = tmp_path / "r.jsonl"
    res = run(spec, "--out", out, "--check", "long_context:f1>=0", "--check", "long_context:f1.lower>=0",
              "--check", "long_context-vs-no_context:f1>=-1")
    assert res.exit_code == 0, res.output
    assert "Checks: 3 of 3 passed" in res.output and "PASSED: all 3 checks" in res.output
    assert "PASS long_context:f1>=0: long_context f1 on fake: mean" in res.output
    assert "PASS long_context-vs-no_context:f1>=-1: long_context − no_context f1 on fake" in res.output


def test_a_failing_threshold_exits_1_and_the_log_shows_the_measurement(tmp_path, spec):
    out = tmp_path / "r.jsonl"
    res = run(spec, "--out", out, "--check", "long_context:f1>1", "--check", "no_context:exact_match<=1")
    assert res.exit_code == 1, res.output
    m = mean(results(out), "long_context")
    assert f"FAIL long_context:f1>1: long_context f1 on fake: mean {m:.4g} not > 1 (n = 4" in res.output
    assert "PASS no_context:exact_match<=1" in res.output
    assert "FAILED: 1 of 2 checks failed" in res.output


def test_interval_bounds_and_differences(tmp_path, fake_server):
    spec = write_run(tmp_path, fake_server.url, generator=NIAH)
    out = tmp_path / "r.jsonl"
    assert run(spec, "--out", out).exit_code == 0
    lc, nc = mean(results(out), "long_context"), mean(results(out), "no_context")
    assert lc > nc  # the fake model answers from its context, not without it
    res = run(spec, "--out", out, "--check", f"long_context:f1.upper>={lc}", "--check",
              f"long_context:f1.lower<={lc}", "--check", f"long_context-vs-no_context:f1>={lc - nc - 1e-9}",
              "--check", "no_context-vs-long_context:f1.upper>0")
    assert res.exit_code == 1, res.output
    assert res.output.count("PASS ") == 3 and "FAIL no_context-vs-long_context:f1.upper>0" in res.output
    assert "95% CI upper bound" in res.output


def test_checks_from_the_run_file_and_the_command_line_both_count(tmp_path, fake_server):
    spec = write_run(tmp_path, fake_server.url, checks=["long_context:f1>1"])
    res = run(spec, "--out", tmp_path / "r.jsonl", "--check", "long_context:f1>=0")
    assert res.exit_code == 1 and "Checks: 1 of 2 passed" in res.output


@pytest.mark.parametrize(("check", "fragment"), [
    ("long_context:f1", "no comparison with a number"),
    ("rag:f1>=0.5", "no strategy 'rag' in this run; strategies: no_context, long_context"),
    ("long_context:rouge>=0.5", "no scorer 'rouge' in this run; scorers: f1, exact_match"),
    ("other/long_context:f1>=0.5", "no endpoint 'other'"),
    ("long_context-vs-baseline:f1>=0", "no baseline was given"),
])
def test_usage_errors_exit_2_before_any_case_runs(tmp_path, spec, fake_server, check, fragment):
    res = run(spec, "--out", tmp_path / "r.jsonl", "--check", check)
    assert res.exit_code == 2, res.output
    assert fragment in " ".join(res.output.split()) and "Traceback" not in res.output
    assert fake_server.stats()["by_path"].get(CHAT, 0) == 0
    assert not (tmp_path / "r.jsonl").exists()


def test_a_bad_check_in_the_run_file_names_the_file_and_entry(tmp_path, fake_server):
    spec = write_run(tmp_path, fake_server.url, checks=["long_context:f1>=0", "long_context f1 >= 0"])
    res = run(spec)
    assert res.exit_code == 2 and f"{spec}, field 'checks[1]'" in " ".join(res.output.split())


@pytest.mark.parametrize("baseline", ["12", "missing.jsonl"])
def test_a_baseline_that_cannot_be_read_is_a_usage_error(tmp_path, spec, baseline):
    res = run(spec, "--out", tmp_path / "r.jsonl", "--baseline", baseline, "--check", "long_context-vs-baseline:f1>=0")
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert ("needs --server URL" in text) if baseline == "12" else ("baseline results file not found" in text)


def test_regression_against_a_baseline_results_file(tmp_path, spec):
    base = tmp_path / "baseline.jsonl"
    assert run(spec, "--out", base).exit_code == 0
    out = tmp_path / "r.jsonl"
    res = run(spec, "--out", out, "--baseline", base, "--check", "long_context-vs-baseline:f1>=0",
              "--check", "long_context-vs-baseline:f1.upper>=0")
    assert res.exit_code == 0, res.output  # same model, same answers: no regression
    assert "long_context − baseline long_context f1 on fake: mean 0" in res.output
    assert f"baseline: {base}" in " ".join(res.output.split())
    # a baseline that was perfect: the current run regressed
    perfect = [r.model_copy(update={"scores": {**r.scores, "f1": 1.0}}) for r in results(base)]
    base.write_text("".join(r.model_dump_json() + "\n" for r in perfect))
    res = run(spec, "--out", out, "--baseline", base, "--check", "long_context-vs-baseline:f1>=-0.02")
    assert res.exit_code == 1, res.output
    regression = mean(results(out), "long_context") - 1.0
    assert f"mean {regression:.4g} not ≥ -0.02 (n = 4" in res.output


def test_the_run_files_baseline_is_relative_to_it(tmp_path, fake_server):
    spec = write_run(tmp_path, fake_server.url)
    assert run(spec, "--out", tmp_path / "base.jsonl").exit_code == 0
    spec = write_run(tmp_path, fake_server.url, baseline="base.jsonl", checks=["no_context-vs-baseline:f1>=0"])
    res = run(spec, "--out", tmp_path / "elsewhere" / "r.jsonl")
    assert res.exit_code == 0, res.output


def test_junit_markdown_and_the_github_step_summary(tmp_path, spec):
    junit, md, step = tmp_path / "out" / "junit.xml", tmp_path / "summary.md", tmp_path / "step.md"
    step.write_text("earlier step\n")
    res = run(spec, "--out", tmp_path / "r.jsonl", "--check", "long_context:f1>=0", "--check", "long_context:f1>1",
              "--junit", junit, "--markdown", md, env={"GITHUB_STEP_SUMMARY": str(step)})
    assert res.exit_code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failure = suite.findall("testcase")[1].find("failure")
    assert failure is not None and "not > 1" in failure.get("message")
    text = md.read_text()
    assert text.startswith("## ctxeval run run.yaml: FAILED") and "### Checks: 1 of 2 passed" in text
    assert "f1 [95% CI] | exact_match [95% CI]" in text and "| fake | long_context | 4 |" in text
    assert step.read_text() == "earlier step\n" + text + "\n"


def test_a_run_whose_every_case_fails_exits_1_with_the_reason(tmp_path):
    spec = write_run(tmp_path, "http://127.0.0.1:9")  # nothing listens there
    junit = tmp_path / "junit.xml"
    res = run(spec, "--out", tmp_path / "r.jsonl", "--junit", junit)
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "run failed: no case got an answer (error: 8) (endpoint http://127.0.0.1:9)" in text
    assert "FAILED: the run failed" in text
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case.get("name") == "run status" and case.find("failure") is not None


def test_report_gates_a_results_file_and_writes_html(tmp_path, spec):
    out = tmp_path / "r.jsonl"
    assert run(spec, "--out", out).exit_code == 0
    html = tmp_path / "report" / "r.html"
    res = runner.invoke(cli, ["report", str(out), "--spec", str(spec), "--html", str(html),
                              "--check", "long_context:f1>=0", "--title", "nightly"])
    assert res.exit_code == 0, res.output
    page = html.read_text()
    assert "<title>nightly · ctxeval report</title>" in page and 'data-figure="chart-length-data"' in page
    assert 'data-check="long_context:f1&gt;=0"' in page and "multihop" in page
    res = runner.invoke(cli, ["report", str(out), "--check", "long_context:f1>1"])
    assert res.exit_code == 1 and "FAIL long_context:f1>1" in res.output
    assert runner.invoke(cli, ["report", str(out), "--check", "rag:f1>1"]).exit_code == 2
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = runner.invoke(cli, ["report", str(out), "--check", "long_context:f1>=0", "--junit", str(blocker / "j.xml")])
    assert res.exit_code == 2 and "error: cannot write" in res.output and "Traceback" not in res.output
    assert runner.invoke(cli, ["report", str(tmp_path / "nope.jsonl")]).exit_code == 2
