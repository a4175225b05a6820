"""``ctxeval suite …``: generate, import, sweep, inspect suites and print their schema.

Every command that writes a suite writes it whole or not at all (temporary file, then rename). Errors
print one actionable line and exit with status 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError

from evals import (
    CtxevalError,
    Suite,
    UserInputError,
    local_tokenizer,
    parse_depths,
    parse_lengths,
    registry,
    suite_io,
)

suite_app = typer.Typer(name="suite", no_args_is_help=True, add_completion=False,
                        help="Generate, import, sweep and inspect suites (documents + questions).")

_OUT = typer.Option(..., "--out", "-o", help="suite file to write: .yaml, .yml, .json or .jsonl")
_TOKENIZER = typer.Option("cl100k", "--tokenizer", help="the endpoint's tokenizer: server:URL (its /tokenize, "
                          "e.g. server:http://127.0.0.1:8000), a path to its tokenizer.json, deepseek-v4, or "
                          "cl100k (the fallback)")
_LENGTHS = "comma-separated context lengths in tokens, e.g. 1000,2000 or 4k,32k"
_DEPTHS = "comma-separated evidence depths 0..100, e.g. 0,50,100"


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except CtxevalError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as e:
        typer.echo(f"error: {e.errors(include_url=False)[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    except OSError as e:
        typer.echo(f"error: {e.filename or ''}: {e.strerror or e}", err=True)
        raise typer.Exit(2) from None


def parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML scalars or lists (``3``, ``true``, ``[a, b]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserInputError(f"--param '{item}' must look like key=value", field="param")
        if key in out:
            raise UserInputError(f"--param '{key}' is given twice", field="param")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def tokenizer_from(spec: str) -> Any:
    """``server:URL[#model]`` counts with that server's ``/tokenize``; anything else is a local tokenizer."""
    if spec.startswith("server:"):
        from evals import ServerTokenizer

        url, _, model = spec[len("server:"):].partition("#")
        if not url.startswith(("http://", "https://")):
            raise UserInputError(f"--tokenizer {spec}: give server:http://host:port", field="tokenizer")
        return ServerTokenizer(url, model)
    return local_tokenizer(spec)


def _wrote(path: Path, suite: Suite) -> None:
    typer.echo(f"wrote {path}: {len(suite.documents):,} documents, {len(suite.questions):,} questions")


@suite_app.command("generate")
def generate_cmd(
    kind: str = typer.Argument(..., help="suite kind: " + ", ".join(registry.known_names("generator"))),
    out: Path = _OUT,
    seed: int = typer.Option(0, "--seed", help="random seed; the same seed gives the same suite"),
    tokenizer: str = _TOKENIZER,
    lengths: str | None = typer.Option(None, "--lengths", help=_LENGTHS),
    depths: str | None = typer.Option(None, "--depths", help=_DEPTHS),
    samples: int | None = typer.Option(None, "--samples", help="questions per length/depth (or in all)"),
    param: list[str] = typer.Option([], "--param", "-p", help="generator parameter key=value, repeatable"),
    haystack_file: Path | None = typer.Option(None, "--haystack-file", help="a UTF-8 text file for the prose "
                                              "haystack (niah, ruler_niah_* with haystack essay), read as far "
                                              "as the longest length needs"),
) -> None:
    """Generate a synthetic suite of KIND (`ctxeval components generators` lists them with parameters)."""
    from evals import generate_suite as generate
    from evals import suite_kinds as list_kinds

    with _user_errors():
        if kind not in list_kinds():
            raise UserInputError(f"unknown suite kind '{kind}'; known kinds: {', '.join(list_kinds())}",
                                 field="kind")
        suite_io.format_of(out)
        params = parse_params(param)
        named: dict[str, Any] = {"seed": seed}
        if lengths is not None:
            named["lengths"] = parse_lengths(lengths)
        if depths is not None:
            named["depths"] = parse_depths(depths)
        if samples is not None:
            named["samples"] = samples
        if haystack_file is not None:
            named["haystack_file"] = str(haystack_file)
        for key in named:
            if key in params:
                raise UserInputError(f"'{key}' is given both as --{key} and as --param", field="param")
        suite = generate(kind, {**named, **params}, tokenizer_from(tokenizer))
        suite_io.dump_suite(suite, out)
    _wrote(out, suite)


@suite_app.command("import")
def import_cmd(
    out: Path = _OUT,
    questions: Path | None = typer.Option(None, "--questions", help="questions as .csv or .jsonl"),
    documents: Path | None = typer.Option(None, "--documents", help="folder or .zip of .txt/.md/.html/.pdf"),
    longbench: Path | None = typer.Option(None, "--longbench", help="LongBench/InfiniteBench style .jsonl"),
    name: str | None = typer.Option(None, "--name", help="suite name (default: the input file's name)"),
    default_question: str | None = typer.Option(
        None, "--default-question", help="question for LongBench records whose 'input' is empty"),
) -> None:
    """Import questions + documents, or a LongBench-style file, as a suite."""
    from evals import import_longbench, import_questions

    with _user_errors():
        suite_io.format_of(out)
        if longbench is not None:
            if questions is not None or documents is not None:
                raise UserInputError("use either --longbench or --questions with --documents, not both")
            suite = import_longbench(longbench, name=name, default_question=default_question)
        elif questions is not None and documents is not None:
            suite = import_questions(questions, documents, name=name)
        else:
            raise UserInputError("give --questions FILE and --documents DIR|ZIP, or --longbench FILE")
        suite_io.dump_suite(suite, out)
    _wrote(out, suite)


@suite_app.command("sweep")
def sweep_cmd(
    file: Path = typer.Argument(..., help="suite file whose questions cite evidence documents"),
    lengths: str = typer.Option(..., "--lengths", help=_LENGTHS),
    depths: str = typer.Option("0,50,100", "--depths", help=_DEPTHS),
    out: Path = _OUT,
    seed: int = typer.Option(0, "--seed", help="seed of the distractor choice"),
    tokenizer: str = _TOKENIZER,
) -> None:
    """Turn every question into one variant per length × depth."""
    from evals import sweep

    with _user_errors():
        suite_io.format_of(out)
        grid = parse_lengths(lengths), parse_depths(depths)
        suite = suite_io.load_suite(file)
        result = sweep(suite, lengths=grid[0], depths=grid[1], tokenizer=local_tokenizer(tokenizer), seed=seed)
        suite_io.dump_suite(result, out)
    _wrote(out, result)


@suite_app.command("inspect")
def inspect_cmd(
    file: Path = typer.Argument(..., help="suite file"),
    tokenizer: str = _TOKENIZER,
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Counts, token lengths per power-of-two bucket, question types and a sample question."""
    from evals import render_suite_summary as render
    from evals import summarize_suite as summarize

    with _user_errors():
        summary = summarize(suite_io.load_suite(file), local_tokenizer(tokenizer))
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False) if as_json else render(summary))


@suite_app.command("schema")
def schema_cmd(out: Path | None = typer.Option(None, "--out", "-o", help="write to this file instead")) -> None:
    """Print the JSON Schema of a suite file (YAML or JSON form)."""
    text = suite_io.suite_json_schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    with _user_errors():
        suite_io.write_atomic(out, text)
    typer.echo(f"wrote {out}")
