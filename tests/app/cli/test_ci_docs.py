"""docs/ci.md, run as written: its run file, the baseline command, the GitHub Actions and GitLab CI
steps, the service commands and the API call, against the fake OpenAI server and a real service on
127.0.0.1. Only the install lines and the host names are the test's own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import yaml

from tests.app.cli.test_cli_server import service  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "ci.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def one(lang: str, marker: str) -> str:
    found = [b for b in blocks(lang) if marker in b]
    assert len(found) == 1, f"docs/ci.md should have one {lang} block with {marker!r}"
    return found[0]


def ctxeval_commands(lines: list[str]) -> list[str]:
    """The ctxeval command lines of a CI step (install steps are the CI image's business)."""
    out = []
    for text in lines:
        text = text.strip()
        if text.startswith("ctxeval "):
            out.append(text)
    return out


def sh(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path, fake_server):
    """A repository as the doc describes it: eval/ci.yaml from the doc, pointed at the fake server."""
    text = one("yaml", "# eval/ci.yaml")
    assert "base_url: http://127.0.0.1:8001" in text
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "ci.yaml").write_text(
        text.replace("http://127.0.0.1:8001", fake_server.url) + f"cache: {tmp_path / 'cache.sqlite'}\n")
    return tmp_path


@pytest.fixture
def env(tmp_path):
    bindir = str(Path(sys.executable).parent)
    assert shutil.which("ctxeval", path=bindir), "the ctxeval console script is not installed"
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CTXEVAL_", "GITHUB_"))}
    e.update(PATH=bindir + os.pathsep + e.get("PATH", ""), OPENAI_API_KEY="sk-doc-test", COLUMNS="100",
             PYTHONPATH=str(ROOT))
    return e


def test_the_documented_check_syntax_examples_parse():
    from evals.checks import parse_check

    table = DOC.read_text().split("## Checks", 1)[1].split("## Exit codes", 1)[0]
    examples = re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)
    assert len(examples) >= 6
    for text in examples:
        parse_check(text)


def test_github_actions_recipe(workdir, env):
    base = sh(one("bash", "--out eval/baseline.jsonl").strip(), workdir, env)
    assert base.returncode == 0, base.stdout + base.stderr
    workflow = yaml.safe_load(one("yaml", "runs-on:"))
    steps = workflow["jobs"]["eval"]["steps"]
    commands = ctxeval_commands([s["run"].replace("\\\n", " ") for s in steps if "run" in s])
    assert len(commands) == 1 and "--junit" in commands[0] and "--baseline eval/baseline.jsonl" in commands[0]
    summary = workdir / "step-summary.md"
    step_env = {**env, "GITHUB_STEP_SUMMARY": str(summary)}
    res = sh(commands[0], workdir, step_env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Checks: 3 of 3 passed" in res.stdout and "PASSED" in res.stdout
    uploaded = [p for p in steps if p.get("uses", "").startswith("actions/upload-artifact")][0]
    for path in uploaded["with"]["path"].split():
        assert (workdir / path).is_file(), path
    assert summary.read_text().startswith("## ctxeval run ci.yaml: PASSED")
    # the same step with a check the run does not meet fails the job, and the log says why
    strict = commands[0].replace("exact_match>=-0.02", "exact_match>0")
    res = sh(strict, workdir, step_env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL rag-vs-baseline:exact_match>0" in res.stdout and "FAILED: 1 of 3 checks failed" in res.stdout


def test_gitlab_ci_recipe(workdir, env):
    assert sh(one("bash", "--out eval/baseline.jsonl").strip(), workdir, env).returncode == 0
    job = yaml.safe_load(one("yaml", "script:"))["ctxeval"]
    commands = ctxeval_commands(job["script"])
    assert len(commands) == 1
    res = sh(commands[0], workdir, env)
    assert res.returncode == 0, res.stdout + res.stderr
    junit = workdir / job["artifacts"]["reports"]["junit"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")
    for path in job["artifacts"]["paths"]:
        assert (workdir / path).is_file(), path


def test_service_commands_and_api_call(workdir, env, service):  # noqa: F811
    env = {**env, "CTXEVAL_SERVER": service.url, "CTXEVAL_TOKEN": service.token, "CI_COMMIT_SHORT_SHA": "abc1234"}
    assert sh(one("bash", "--out eval/baseline.jsonl").strip(), workdir, env).returncode == 0
    assert sh("cp eval/baseline.jsonl results.jsonl", workdir, env).returncode == 0
    push = sh(one("bash", "ctxeval push").strip(), workdir, env)  # becomes run 1, the stored baseline
    assert push.returncode == 0, push.stdout + push.stderr
    assert f"{service.url}/runs/1" in push.stdout
    remote = one("bash", "ctxeval run eval/ci.yaml --server").replace("\\\n", " ")
    res = sh(remote.strip(), workdir, env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"dashboard: {service.url}/runs/2" in res.stdout and "PASS rag-vs-baseline:exact_match>=-0.02" in res.stdout
    headers = {"Authorization": f"Bearer {service.token}"}
    with httpx.Client(base_url=service.url, headers=headers) as api:
        run = api.get("/api/runs/2").json()
        assert run["name"] == "ci abc1234" and run["baseline_run_id"] == 1 and run["checks_passed"] is True
        assert api.get("/api/runs/1").json()["name"] == "ci abc1234"
    if shutil.which("curl"):
        curl = one("bash", "curl -s -X POST")
        res = sh(curl.strip() + " -o response.json -w '%{http_code}'", workdir, env)
        assert res.stdout.strip() == "201", res.stdout + (workdir / "response.json").read_text()
