"""The command line on the same hostile suite files the API refuses: one ``error: …`` line naming the
file (and line or field), exit status 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.app.factories import suite_body
from tests.evals.test_security import yaml_bomb

SUITE = json.dumps(suite_body())
FILES = {
    "surrogate.json": (SUITE.replace('"What is', '"\\ud800What is', 1), "lone surrogate U+D800"),
    "surrogate.jsonl": ('{"type": "question", "id": "q", "question": "\\ud800"}\n', "lone surrogate"),
    "bigint.json": (SUITE[:-1] + ', "metadata": {"n": ' + "9" * 5000 + "}}", "64-bit"),
    "deep.json": (SUITE[:-1] + ', "metadata": {"n": ' + "[" * 100_000 + "]" * 100_000 + "}}", "nested deeper"),
    "ybomb9.yaml": (yaml_bomb(9), "aliases expand"),
}


@pytest.mark.parametrize("name", list(FILES))
def test_suite_inspect_prints_one_line_and_exits_2(tmp_path: Path, name: str) -> None:
    text, words = FILES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["suite", "inspect", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and words in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr
