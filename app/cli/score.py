"""``ctxeval score --metric NAME --input pairs.jsonl``: score prediction/reference pairs with one answer
metric, one ``{"score": x}`` line per input line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from evals import SCORERS, AnswerMetric, CaseResult, Question, UserInputError

Pair = tuple[str, list[str], dict[str, Any]]
EXTRA_FIELDS = ("all_classes", "dataset", "task")
"""Optional per-line fields the benchmark metrics read: LongBench's ``all_classes`` (classification),
``dataset`` (the ``longbench`` scorer) and InfiniteBench's ``task`` (the ``infinitebench`` scorer)."""


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
    extras: dict[str, Any] = {}
    classes = obj.get("all_classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise UserInputError("'all_classes' must be a list of strings", source=source, line=line,
                                 field="all_classes")
        extras["all_classes"] = classes
    for key in ("dataset", "task"):
        if obj.get(key) is not None:
            if not isinstance(obj[key], str):
                raise UserInputError(f"'{key}' must be a string", source=source, line=line, field=key)
            extras[key] = obj[key]
    return pred, refs, extras


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
    return [(n, *parse_pair(raw, source=source, line=n))  # type: ignore[misc]
            for n, raw in enumerate(text.split("\n"), start=1) if raw.strip()]


def score_file(metric: str, path: str) -> list[float]:
    """The score of every pair in ``path`` with answer metric ``metric``, in file order. Benchmark
    metrics read the line's ``all_classes``, ``dataset`` or ``task``; a line they cannot score stops
    the command, naming the line."""
    answer_metric(metric)  # an answer metric, or a UserInputError naming the valid ones
    scorer = SCORERS[metric]
    source = "<stdin>" if path == "-" else path
    out: list[float] = []
    for n, pred, refs, extras in read_pairs(path):  # type: ignore[misc]
        question = Question(id=f"line{n}", question="-", answers=refs, metadata=extras)
        case = CaseResult(case_id=f"line{n}", question_id=question.id, endpoint="-", strategy="-",
                          strategy_name="-", answer=pred)
        try:
            value = scorer.score(case, question)
            out.append(float(value) if value is not None else 0.0)
        except UserInputError as exc:
            raise UserInputError(exc.detail, source=source, line=n, field=exc.field) from None
        except (ValueError, IndexError) as exc:
            raise UserInputError(f"{metric} cannot score this line: {exc}", source=source, line=n) from None
    return out


def register(cli: typer.Typer) -> None:
    @cli.command("score")
    def score_cmd(
        metric: str = typer.Option(..., "--metric", "-m",
                                   help="an answer metric: exact_match, f1, subspan_em, ruler_all, ruler_part, "
                                   "rouge_l, best_subspan_em, longbench_* , longbench, infinitebench"),
        input_path: str = typer.Option(..., "--input", "-i", help='JSONL, one {"prediction": str, '
                                       '"references": [str]} per line (optional "all_classes", "dataset", '
                                       '"task"); "-" reads stdin'),
    ) -> None:
        """Score prediction/reference pairs with one answer metric; prints {"score": x} per line."""
        try:
            scores = score_file(metric, input_path)
        except UserInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        for s in scores:
            typer.echo(json.dumps({"score": s}))
