"""The YAML file behind ``ctxeval run``: a suite, endpoints, strategies and scorers.

Example::

    suite: suites/demo.jsonl            # a suite file, relative to this file
    # or: generate: {kind: niah, tokenizer: cl100k, params: {lengths: [2000], depths: [0, 50, 100]}}
    endpoints:
      - name: local
        base_url: http://127.0.0.1:8080/v1
        model: smollm2
        api_key_env: OPENAI_API_KEY     # the key is read from this variable, never written in the file
        context_window: 8192
    strategies:
      - name: long_context
      - name: rag
        params: {k: 5, chunk_tokens: 256}
    scorers: [exact_match, f1, llm_judge]
    embeddings: {source: endpoint, model: text-embedding-3-small}   # for dense/hybrid retrieval
    judge: local                        # the name of an endpoint above, or an endpoint of its own
    checks: ["rag:f1>=0.6", "rag-vs-long_context:f1>=-0.02"]   # CI gates (docs/ci.md)
    baseline: baseline.jsonl            # what -vs-baseline checks compare with
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals import (
    EmbeddingSettings,
    Endpoint,
    RunSpec,
    StrategySpec,
    Suite,
    UserInputError,
    load_yaml,
    local_tokenizer,
    yaml_line,
)


class GenerateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    tokenizer: str = "cl100k"
    params: dict[str, Any] = Field(default_factory=dict)


class EndpointEntry(Endpoint):
    api_key_env: str | None = Field(default=None, description="environment variable holding the API key")


class EmbeddingsEntry(EmbeddingSettings):
    endpoint: EndpointEntry | None = None


class RunFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str | None = None
    generate: GenerateSpec | None = None
    endpoints: list[EndpointEntry] = Field(min_length=1)
    strategies: list[StrategySpec] = Field(min_length=1)
    scorers: list[str] | None = None
    system_prompt: str | None = None
    preset: str | None = Field(default=None, description="prompt preset for every question (default: the suite's)")
    cache: str | bool = ".ctxeval/cache.sqlite"
    embeddings: EmbeddingsEntry | None = None
    judge: EndpointEntry | str | None = Field(default=None, description="an endpoint, or the name of one above")
    checks: list[str] = Field(default_factory=list, description="CI checks (docs/ci.md), with any --check")
    baseline: str | int | None = Field(default=None, description="results file (relative to this file), run id "
                                                                 "or run URL the -vs-baseline checks compare with")


def load_run_file(path: str | Path) -> tuple[RunFile, Path]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UserInputError("file not found", source=str(p)) from e
    except UnicodeDecodeError as e:
        raise UserInputError(f"not UTF-8 text (byte {e.start})", source=str(p)) from e
    try:
        node = yaml.compose(text)
        data = load_yaml(text, source=str(p))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserInputError(f"invalid YAML: {getattr(e, 'problem', e)}", source=str(p),
                             line=mark.line + 1 if mark else None) from e
    if not isinstance(data, dict):
        raise UserInputError("expected a mapping with suite, endpoints and strategies", source=str(p))
    try:
        run = RunFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        raise UserInputError(err["msg"], source=str(p), line=yaml_line(node, loc),
                             field=".".join(str(x) for x in loc)) from e
    if (run.suite is None) == (run.generate is None):
        raise UserInputError("give exactly one of 'suite' (a file) or 'generate'", source=str(p), field="suite")
    return run, p.parent


def _resolve(e: EndpointEntry, source: str, where: str, keys: bool = True) -> Endpoint:
    data = e.model_dump(exclude={"api_key_env"})
    if not keys:  # only the spec is wanted (ctxeval push): no key is read, the spec says one is set
        data["api_key"] = "not-read" if e.api_key_env or e.api_key is not None else None
    elif e.api_key_env:
        key = os.environ.get(e.api_key_env)
        if not key:
            raise UserInputError(f"environment variable {e.api_key_env} is not set", source=source,
                                 field=f"{where}.api_key_env")
        data["api_key"] = key
    elif e.api_key is not None:
        data["api_key"] = e.api_key.get_secret_value()
    return Endpoint.model_validate(data)


def resolve_endpoints(run: RunFile, source: str = "run file", *, keys: bool = True) -> list[Endpoint]:
    """Endpoints with keys read from their environment variables (none with ``keys=False``)."""
    return [_resolve(e, source, f"endpoints[{i}]", keys) for i, e in enumerate(run.endpoints)]


def resolve_judge(run: RunFile, endpoints: list[Endpoint], source: str = "run file", *,
                  keys: bool = True) -> Endpoint | None:
    """The judge endpoint: one of the run's endpoints by name, or its own entry."""
    if run.judge is None:
        return None
    if isinstance(run.judge, str):
        found = next((e for e in endpoints if e.name == run.judge), None)
        if found is None:
            raise UserInputError(f"no endpoint named '{run.judge}'; endpoints: {', '.join(e.name for e in endpoints)}",
                                 source=source, field="judge")
        return found
    return _resolve(run.judge, source, "judge", keys)


def resolve_embeddings(run: RunFile, source: str = "run file", *, keys: bool = True) -> EmbeddingSettings | None:
    """The embedding settings with the separate embedding endpoint's key resolved."""
    if run.embeddings is None:
        return None
    data = run.embeddings.model_dump(exclude={"endpoint"})
    ep = run.embeddings.endpoint
    return EmbeddingSettings(**data, endpoint=_resolve(ep, source, "embeddings.endpoint", keys) if ep else None)


def resolve_secrets(spec: RunSpec) -> dict[str, str]:
    """The pipeline tokens the run's strategies name (``token_env``), read from the environment."""
    from evals import required_secrets

    out = {}
    for name in required_secrets(spec):
        value = os.environ.get(name)
        if not value:
            raise UserInputError(f"environment variable {name} is not set", field="strategies.params.token_env")
        out[name] = value
    return out


def load_suite_for(run: RunFile, base: Path) -> Suite:
    if run.suite is not None:
        from evals import load_suite

        path = Path(run.suite)
        return load_suite(path if path.is_absolute() else base / path)
    assert run.generate is not None
    from evals import generate_suite as generate

    return generate(run.generate.kind, run.generate.params, local_tokenizer(run.generate.tokenizer))
