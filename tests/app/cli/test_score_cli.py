"""``ctxeval score --metric NAME``: the benchmark metrics with their per-line fields."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner(env={"COLUMNS": "80"})


def _lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_longbench_metrics_read_all_classes_and_dataset(tmp_path: Path) -> None:
    pairs = _lines(tmp_path / "p.jsonl", [
        {"prediction": "Location\nHuman being", "references": ["Location"], "dataset": "trec",
         "all_classes": ["Location", "Human being"]},
        {"prediction": "北京是中国的首都", "references": ["北京"], "dataset": "multifieldqa_zh"},
    ])
    result = runner.invoke(cli, ["score", "--metric", "longbench", "--input", str(pairs)])
    assert result.exit_code == 0, result.output
    scores = [json.loads(x)["score"] for x in result.output.splitlines()]
    assert scores[0] == 1.0  # first-line rule, then classification
    assert 0 < scores[1] < 1
    result = runner.invoke(cli, ["score", "--metric", "longbench_classification", "--input", str(pairs)])
    assert result.exit_code == 2
    assert "line 2" in result.output and "all_classes" in result.output


def test_every_longbench_metric_is_accepted(tmp_path: Path) -> None:
    pairs = _lines(tmp_path / "p.jsonl", [{"prediction": "Paragraph 3", "references": ["Paragraph 3"],
                                           "all_classes": ["Paragraph 3"]}])
    for metric in ("longbench_qa_f1", "longbench_rouge", "longbench_classification", "longbench_retrieval",
                   "longbench_count", "longbench_code_sim", "best_subspan_em"):
        result = runner.invoke(cli, ["score", "--metric", metric, "--input", str(pairs)])
        assert result.exit_code == 0, (metric, result.output)
    zh = _lines(tmp_path / "zh.jsonl", [{"prediction": "答案是段落3", "references": ["段落3"]}])
    for metric in ("longbench_qa_f1_zh", "longbench_rouge_zh", "longbench_retrieval_zh"):
        result = runner.invoke(cli, ["score", "--metric", metric, "--input", str(zh)])
        assert result.exit_code == 0, (metric, result.output)


def test_infinitebench_reads_the_task(tmp_path: Path) -> None:
    pairs = _lines(tmp_path / "p.jsonl", [{"prediction": "The pass key is 123.", "references": ["123"],
                                           "task": "passkey"}])
    result = runner.invoke(cli, ["score", "--metric", "infinitebench", "--input", str(pairs)])
    assert result.exit_code == 0 and json.loads(result.output)["score"] == 1.0
    bad = _lines(tmp_path / "b.jsonl", [{"prediction": "x", "references": ["y"]}])
    result = runner.invoke(cli, ["score", "--metric", "infinitebench", "--input", str(bad)])
    assert result.exit_code == 2 and "line 1" in result.output
