"""``ctxeval score --metric NAME --input pairs.jsonl``: score prediction/reference pairs with one answer
metric, one ``{"score": x}`` line per input line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from evals import SCORERS, AnswerMetric, UserInputError

Pair = tuple[str, list[str]]


def answer_metric(name: str) -> AnswerMetric:
    """The answer metric called ``name``; a ``UserInputError`` naming the valid ones otherwise."""
    valid = [n for n, s in SCORERS.items() if s.kind == "answer"]
    if name not in valid:
        raise UserInputError(f"unknown answer metric '{name}'; valid metrics: {', '.join(valid)}",
                             field="metric")
    return SCORERS[name].metric()


def parse_pair(raw: str, *, source: str, line: int) -> Pair:
    """One line ``{"prediction": str, "references": [str, ...]}``, checked field by field."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"not valid JSON ({exc.msg} at column {exc.colno})", source=source,
                             line=line) from None
    if not isinstance(obj, dict):
        raise UserInputError(f"expected a JSON object, got {type(obj).__name__}", source=source, line=line)
    pred = obj.get("prediction")
    if not isinstance(pred, str):
        what = "is missing" if "prediction" not in obj else f"must be a string, got {type(pred).__name__}"
        raise UserInputError(f"'prediction' {what}", source=source, line=line, field="prediction")
    refs = obj.get("references")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        what = "is missing" if "references" not in obj else "must be a list of strings"
        raise UserInputError(f"'references' {what}", source=source, line=line, field="references")
    if not refs:
        raise UserInputError("'references' is empty; give at least one reference answer", source=source,
                             line=line, field="references")
    return pred, refs


def read_pairs(path: str) -> list[Pair]:
    """Every non-blank line of ``path`` (``-`` = stdin) as a pair; the first bad line raises."""
    source = "<stdin>" if path == "-" else path
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserInputError("file not found", source=source) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserInputError(f"cannot read the file ({exc})", source=source) from None
    # Split on newlines only: U+2028 and U+0085 may stand unescaped inside a JSON string.
    return [parse_pair(raw, source=source, line=n)
            for n, raw in enumerate(text.split("\n"), start=1) if raw.strip()]


def score_file(metric: str, path: str) -> list[float]:
    """The score of every pair in ``path`` with answer metric ``metric``, in file order."""
    fn = answer_metric(metric)
    return [fn(pred, refs) for pred, refs in read_pairs(path)]


def register(cli: typer.Typer) -> None:
    @cli.command("score")
    def score_cmd(
        metric: str = typer.Option(..., "--metric", "-m",
                                   help="exact_match | f1 | subspan_em | ruler_all | ruler_part | rouge_l"),
        input_path: str = typer.Option(..., "--input", "-i", help='JSONL, one {"prediction": str, '
                                       '"references": [str]} per line; "-" reads stdin'),
    ) -> None:
        """Score prediction/reference pairs with one answer metric; prints {"score": x} per line."""
        try:
            scores = score_file(metric, input_path)
        except UserInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        for s in scores:
            typer.echo(json.dumps({"score": s}))
