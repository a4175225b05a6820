"""``ctxeval suite …`` through typer's CliRunner: generate, import, sweep, inspect, schema."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from evals.suites.io import load_suite, suite_json_schema

runner = CliRunner()


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["suite", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def multihop_file(tmp_path: Path) -> Path:
    out = tmp_path / "mh.yaml"
    code, stdout, _ = _run("generate", "multihop", "--seed", "4", "--samples", "6", "--param", "target_tokens=5000",
                           "--out", out)
    assert code == 0, stdout
    return out


def test_generate_writes_a_loadable_suite(multihop_file: Path) -> None:
    suite = load_suite(multihop_file)
    assert len(suite.questions) == 6
    assert suite.metadata["params"]["seed"] == 4 and suite.metadata["target_tokens"] == 5000


def test_generate_with_a_sweep_grid(tmp_path: Path) -> None:
    out = tmp_path / "grid.jsonl"
    code, stdout, stderr = _run("generate", "multihop", "--samples", "2", "--lengths", "1k,2000", "--depths", "0,100",
                                "-p", "qtypes=[single_hop, two_hop]", "--out", out)
    assert code == 0, stderr
    assert stdout.strip() == f"wrote {out}: {len(load_suite(out).documents):,} documents, 8 questions"
    ids = {q.id.split("@", 1)[1] for q in load_suite(out).questions}
    assert ids == {"L1000@D0", "L1000@D100", "L2000@D0", "L2000@D100"}


@pytest.mark.parametrize(("args", "message"), [
    (["generate", "riddles", "--out", "x.yaml"], "unknown suite kind 'riddles'"),
    (["generate", "multihop", "--param", "target_tokens", "--out", "x.yaml"], "must look like key=value"),
    (["generate", "multihop", "--seed", "1", "--param", "seed=2", "--out", "x.yaml"], "given both as --seed"),
    (["generate", "multihop", "--lengths", "1k,lots", "--out", "x.yaml"], "'lots' is not a number of tokens"),
    (["generate", "multihop", "--param", "target_tokens=10", "--out", "x.yaml"],
     "field 'target_tokens'"),
    (["generate", "multihop", "--out", "x.txt"], "unknown suite file extension '.txt'"),
    (["generate", "multihop", "--tokenizer", "o200k", "--out", "x.yaml"], "unknown tokenizer 'o200k'"),
    (["import", "--questions", "q.csv", "--out", "x.yaml"], "give --questions FILE and --documents"),
    (["import", "--longbench", "missing.jsonl", "--out", "x.yaml"], "missing.jsonl: file not found"),
    (["inspect", "missing.yaml"], "missing.yaml: file not found"),
])
def test_errors_exit_2_with_an_actionable_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = _run(*args)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr
    assert not (tmp_path / "x.yaml").exists()


def test_import_questions_and_longbench(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The hotel limit is $180.", encoding="utf-8")
    (docs / "b.md").write_text("# Leave\n\n25 days.", encoding="utf-8")
    qfile = tmp_path / "q.csv"
    with qfile.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "question", "answers", "evidence"],
                                 ["h", "Hotel limit?", "$180|180", "a.txt"]])
    out = tmp_path / "imported.json"
    code, _, stderr = _run("import", "--questions", qfile, "--documents", docs, "--out", out)
    assert code == 0, stderr
    suite = load_suite(out)
    assert [d.id for d in suite.documents] == ["a.txt", "b.md"] and suite.questions[0].answers == ["$180", "180"]

    lb = tmp_path / "lb.jsonl"
    lb.write_text(json.dumps({"_id": "x", "input": "Who?", "context": "Ada did.", "answers": ["Ada"]}) + "\n",
                  encoding="utf-8")
    code, _, stderr = _run("import", "--longbench", lb, "--name", "lb", "--out", tmp_path / "lb.yaml")
    assert code == 0, stderr
    assert load_suite(tmp_path / "lb.yaml").name == "lb"


def test_sweep_and_nothing_half_written(multihop_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "swept.jsonl"
    code, _, stderr = _run("sweep", multihop_file, "--lengths", "1500,3000", "--depths", "0,50,100", "--out", out)
    assert code == 0, stderr
    swept = load_suite(out)
    assert len(swept.questions) == 6 * 2 * 3
    assert all("context_tokens" in q.metadata for q in swept.questions)

    out.write_text("previous content", encoding="utf-8")
    code, _, stderr = _run("sweep", multihop_file, "--lengths", "20", "--out", out)
    assert code == 2 and "more than the length 20" in stderr
    assert out.read_text(encoding="utf-8") == "previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mh.yaml", "swept.jsonl"]


def test_inspect_shows_counts_buckets_types_and_a_sample(multihop_file: Path) -> None:
    code, stdout, _ = _run("inspect", multihop_file)
    assert code == 0
    suite = load_suite(multihop_file)
    assert f"documents: {len(suite.documents)}   questions: 6" in stdout
    assert f"corpus: {suite.metadata['tokens']:,} cl100k tokens" in stdout
    assert "4096-8191" in stdout  # every question's context is the whole 5,000-token corpus
    assert "question types:" in stdout and "unanswerable" in stdout
    assert f"[{suite.questions[0].id}] {suite.questions[0].question}" in stdout

    code, stdout, _ = _run("inspect", multihop_file, "--json")
    summary = json.loads(stdout)
    assert summary["context_tokens"] == {"4096-8191": 6}
    assert sum(summary["document_tokens"].values()) == len(suite.documents)
    assert sum(summary["question_types"].values()) == 6


def test_schema_prints_and_writes(tmp_path: Path) -> None:
    code, stdout, _ = _run("schema")
    assert code == 0 and json.loads(stdout) == suite_json_schema()
    code, _, _ = _run("schema", "--out", tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == suite_json_schema()


def test_generate_with_a_haystack_file_and_the_servers_tokenizer(tmp_path, fake_server):
    from typer.testing import CliRunner as _Runner

    from app.cli import cli as _cli
    from evals.suites.io import load_suite as _load

    hay = tmp_path / "hay.txt"
    hay.write_text("The river runs to the sea. The sea is wide and deep.\n" * 2000, encoding="utf-8")
    out = tmp_path / "s.jsonl"
    result = _Runner().invoke(_cli, ["suite", "generate", "niah", "-o", str(out), "--lengths", "1500",
                                     "--depths", "50", "--haystack-file", str(hay),
                                     "--tokenizer", f"server:{fake_server.base_url}"])
    assert result.exit_code == 0, result.output
    suite = _load(out)
    assert "The river runs to the sea." in suite.documents[0].text
    assert suite.metadata["tokenizer"] == "server"
    bad = _Runner().invoke(_cli, ["suite", "generate", "niah", "-o", str(out), "--haystack-file",
                                  str(tmp_path / "nope.txt")])
    assert bad.exit_code == 2 and "haystack file not found" in bad.output
