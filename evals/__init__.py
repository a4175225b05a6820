"""ctxeval's engine: suites, strategies, scorers, the runner and the statistics, free of any surface.

The service, the pages and the command line (``app``) import the engine from here only; the names are
loaded on first use, so importing one of them does not import the whole engine. Components
(strategies, retrievers, chunkers, scorers, generators, presets) are reached through ``registry``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_NAMES: dict[str, tuple[str, str]] = {
    # domain
    **{n: ("evals.domain", n) for n in ("CaseResult", "ENGINE_VERSION", "Endpoint", "Evidence", "Outcome",
                                        "Question", "RetrievedChunk", "RunSpec", "StrategySpec", "Suite",
                                        "Usage")},
    # errors
    **{n: ("evals.errors", n) for n in ("CtxevalError", "EndpointError", "UserInputError")},
    # running
    **{n: ("evals.runner", n) for n in ("CasePlan", "Engine", "make_spec", "plan_cases", "prefix_waves",
                                        "required_secrets", "run_all")},
    "SqliteCache": ("evals.cache", "SqliteCache"),
    "EmbeddingSettings": ("evals.embeddings", "EmbeddingSettings"),
    "local_tokenizer": ("evals.tokens", "local_tokenizer"),
    "ProbeResult": ("evals.probe", "ProbeResult"),
    "probe_endpoint": ("evals.probe", "probe"),
    # components
    "build_strategy": ("evals.strategies.base", "build_strategy"),
    "EstimateContext": ("evals.strategies.base", "EstimateContext"),
    "uses_embeddings": ("evals.retrieval.base", "uses_embeddings"),
    "IndexCache": ("evals.retrieval.base", "IndexCache"),
    **{n: ("evals.scorers", n) for n in ("AnswerMetric", "SCORERS", "get_scorer", "is_judge_scorer")},
    # summaries and statistics
    **{n: ("evals.summary", n) for n in ("CaseRow", "ErrorClassCount", "GroupSummary", "PairedComparison",
                                         "RunSummary", "compare", "health_of", "summarize")},
    **{n: ("evals.diagnostics", n) for n in ("AttributionRow", "JudgeAgreement")},
    "pareto_frontier": ("evals.stats", "pareto_frontier"),
    # suites
    **{n: ("evals.suites.io", n) for n in ("format_of", "load_suite", "parse_suite", "yaml_line")},
    **{n: ("evals.suites.importers", n) for n in ("import_longbench", "import_questions")},
    **{n: ("evals.suites.sweep", n) for n in ("parse_depths", "parse_lengths", "sweep")},
    "demo_suite": ("evals.suites.demo", "demo_suite"),
    "generate_suite": ("evals.suites.registry", "generate"),
    "suite_kinds": ("evals.suites.registry", "list_kinds"),
    "summarize_suite": ("evals.suites.summary", "summarize"),
    "render_suite_summary": ("evals.suites.summary", "render"),
}
_MODULES: dict[str, str] = {
    "registry": "evals.registry", "plugins": "evals.plugins", "domain": "evals.domain",
    "prompts": "evals.prompts", "suite_io": "evals.suites.io", "suite_generators": "evals.suites.registry",
}

__all__ = sorted([*_NAMES, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _NAMES:
        module, attr = _NAMES[name]
        value = getattr(importlib.import_module(module), attr)
    else:
        raise AttributeError(f"module 'evals' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # the same names, for type checkers
    from evals import domain, plugins, prompts, registry
    from evals.cache import SqliteCache
    from evals.diagnostics import AttributionRow, JudgeAgreement
    from evals.domain import (
        ENGINE_VERSION,
        CaseResult,
        Endpoint,
        Evidence,
        Outcome,
        Question,
        RetrievedChunk,
        RunSpec,
        StrategySpec,
        Suite,
        Usage,
    )
    from evals.embeddings import EmbeddingSettings
    from evals.errors import CtxevalError, EndpointError, UserInputError
    from evals.probe import ProbeResult
    from evals.probe import probe as probe_endpoint
    from evals.retrieval.base import IndexCache, uses_embeddings
    from evals.runner import CasePlan, Engine, make_spec, plan_cases, prefix_waves, required_secrets, run_all
    from evals.scorers import SCORERS, AnswerMetric, get_scorer, is_judge_scorer
    from evals.stats import pareto_frontier
    from evals.strategies.base import EstimateContext, build_strategy
    from evals.suites import io as suite_io
    from evals.suites import registry as suite_generators
    from evals.suites.demo import demo_suite
    from evals.suites.importers import import_longbench, import_questions
    from evals.suites.io import format_of, load_suite, parse_suite, yaml_line
    from evals.suites.registry import generate as generate_suite
    from evals.suites.registry import list_kinds as suite_kinds
    from evals.suites.summary import render as render_suite_summary
    from evals.suites.summary import summarize as summarize_suite
    from evals.suites.sweep import parse_depths, parse_lengths, sweep
    from evals.summary import (
        CaseRow,
        ErrorClassCount,
        GroupSummary,
        PairedComparison,
        RunSummary,
        compare,
        health_of,
        summarize,
    )
    from evals.tokens import local_tokenizer
