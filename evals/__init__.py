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
    "ServerTokenizer": ("evals.tokens", "ServerTokenizer"),
    "ProbeResult": ("evals.probe", "ProbeResult"),
    # input limits and secrets
    **{n: ("evals.limits", n) for n in ("LimitError", "load_yaml", "loads_json")},
    **{n: ("evals.redact", n) for n in ("excerpt", "scrub")},
    "probe_endpoint": ("evals.probe", "probe"),
    "unreachable_reason": ("evals.probe", "unreachable_reason"),
    "normalise_base_url": ("evals.domain", "normalise_base_url"),
    "stable_hash": ("evals.domain", "stable_hash"),
    # components
    "build_strategy": ("evals.strategies.base", "build_strategy"),
    "EstimateContext": ("evals.strategies.base", "EstimateContext"),
    "uses_embeddings": ("evals.retrieval.base", "uses_embeddings"),
    "IndexCache": ("evals.retrieval.base", "IndexCache"),
    **{n: ("evals.scorers", n) for n in ("AnswerMetric", "SCORERS", "get_scorer", "is_judge_scorer")},
    # summaries and statistics
    **{n: ("evals.summary", n) for n in ("CaseRow", "ErrorClassCount", "GroupSummary", "PairedComparison",
                                         "RunSummary", "compare", "health_of", "summarize",
                                         "verdict_markdown")},
    **{n: ("evals.diagnostics", n) for n in ("AttributionRow", "JudgeAgreement")},
    "pareto_frontier": ("evals.stats", "pareto_frontier"),
    **{n: ("evals.run_comparison", n) for n in ("RunPairComparison", "adjust_holm", "compare_runs")},
    "Estimate": ("evals.stats", "Estimate"),
    **{n: ("evals.summary", n) for n in ("LONG_CONTEXT", "NO_CONTEXT")},
    # CI checks
    **{n: ("evals.checks", n) for n in ("Check", "CheckResult", "evaluate_checks", "parse_check", "parse_checks",
                                        "render_junit", "render_markdown", "validate_checks")},
    # suites
    **{n: ("evals.suites.io", n) for n in ("format_of", "load_suite", "parse_suite", "yaml_line")},
    **{n: ("evals.suites.importers", n) for n in ("DOCUMENT_EXTENSIONS", "import_longbench", "import_questions")},
    **{n: ("evals.suites.sweep", n) for n in ("parse_depths", "parse_lengths", "sweep")},
    "demo_suite": ("evals.suites.demo", "demo_suite"),
    "generate_suite": ("evals.suites.registry", "generate"),
    "suite_kinds": ("evals.suites.registry", "list_kinds"),
    "summarize_suite": ("evals.suites.summary", "summarize"),
    "render_suite_summary": ("evals.suites.summary", "render"),
}
_MODULES: dict[str, str] = {
    "registry": "evals.registry", "plugins": "evals.plugins", "domain": "evals.domain", "limits": "evals.limits",
    "prompts": "evals.prompts", "presets": "evals.presets", "suite_io": "evals.suites.io",
    "suite_generators": "evals.suites.registry",
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
    # renamed on the way out: an assignment is an explicit re-export, `import a as b` is not
    import evals.probe as _probe
    import evals.suites.registry as _suites_registry
    import evals.suites.summary as _suites_summary
    from evals import (
        domain as domain,
    )
    from evals import (
        limits as limits,
    )
    from evals import (
        plugins as plugins,
    )
    from evals import (
        presets as presets,
    )
    from evals import (
        prompts as prompts,
    )
    from evals import (
        registry as registry,
    )
    from evals.cache import (
        SqliteCache as SqliteCache,
    )
    from evals.checks import (
        Check as Check,
    )
    from evals.checks import (
        CheckResult as CheckResult,
    )
    from evals.checks import (
        evaluate_checks as evaluate_checks,
    )
    from evals.checks import (
        parse_check as parse_check,
    )
    from evals.checks import (
        parse_checks as parse_checks,
    )
    from evals.checks import (
        render_junit as render_junit,
    )
    from evals.checks import (
        render_markdown as render_markdown,
    )
    from evals.checks import (
        validate_checks as validate_checks,
    )
    from evals.diagnostics import (
        AttributionRow as AttributionRow,
    )
    from evals.diagnostics import (
        JudgeAgreement as JudgeAgreement,
    )
    from evals.domain import (
        ENGINE_VERSION as ENGINE_VERSION,
    )
    from evals.domain import (
        CaseResult as CaseResult,
    )
    from evals.domain import (
        Endpoint as Endpoint,
    )
    from evals.domain import (
        Evidence as Evidence,
    )
    from evals.domain import (
        Outcome as Outcome,
    )
    from evals.domain import (
        Question as Question,
    )
    from evals.domain import (
        RetrievedChunk as RetrievedChunk,
    )
    from evals.domain import (
        RunSpec as RunSpec,
    )
    from evals.domain import (
        StrategySpec as StrategySpec,
    )
    from evals.domain import (
        Suite as Suite,
    )
    from evals.domain import (
        Usage as Usage,
    )
    from evals.domain import (
        normalise_base_url as normalise_base_url,
    )
    from evals.domain import (
        stable_hash as stable_hash,
    )
    from evals.embeddings import (
        EmbeddingSettings as EmbeddingSettings,
    )
    from evals.errors import (
        CtxevalError as CtxevalError,
    )
    from evals.errors import (
        EndpointError as EndpointError,
    )
    from evals.errors import (
        UserInputError as UserInputError,
    )
    from evals.limits import (
        LimitError as LimitError,
    )
    from evals.limits import (
        load_yaml as load_yaml,
    )
    from evals.limits import (
        loads_json as loads_json,
    )
    from evals.probe import (
        ProbeResult as ProbeResult,
    )
    from evals.probe import (
        unreachable_reason as unreachable_reason,
    )
    from evals.redact import (
        excerpt as excerpt,
    )
    from evals.redact import (
        scrub as scrub,
    )
    from evals.retrieval.base import (
        IndexCache as IndexCache,
    )
    from evals.retrieval.base import (
        uses_embeddings as uses_embeddings,
    )
    from evals.run_comparison import (
        RunPairComparison as RunPairComparison,
    )
    from evals.run_comparison import (
        adjust_holm as adjust_holm,
    )
    from evals.run_comparison import (
        compare_runs as compare_runs,
    )
    from evals.runner import (
        CasePlan as CasePlan,
    )
    from evals.runner import (
        Engine as Engine,
    )
    from evals.runner import (
        make_spec as make_spec,
    )
    from evals.runner import (
        plan_cases as plan_cases,
    )
    from evals.runner import (
        prefix_waves as prefix_waves,
    )
    from evals.runner import (
        required_secrets as required_secrets,
    )
    from evals.runner import (
        run_all as run_all,
    )
    from evals.scorers import (
        SCORERS as SCORERS,
    )
    from evals.scorers import (
        AnswerMetric as AnswerMetric,
    )
    from evals.scorers import (
        get_scorer as get_scorer,
    )
    from evals.scorers import (
        is_judge_scorer as is_judge_scorer,
    )
    from evals.stats import (
        Estimate as Estimate,
    )
    from evals.stats import (
        pareto_frontier as pareto_frontier,
    )
    from evals.strategies.base import (
        EstimateContext as EstimateContext,
    )
    from evals.strategies.base import (
        build_strategy as build_strategy,
    )
    from evals.suites import (
        io as suite_io,
    )
    from evals.suites import (
        registry as suite_generators,
    )
    from evals.suites.demo import (
        demo_suite as demo_suite,
    )
    from evals.suites.importers import (
        DOCUMENT_EXTENSIONS as DOCUMENT_EXTENSIONS,
    )
    from evals.suites.importers import (
        import_longbench as import_longbench,
    )
    from evals.suites.importers import (
        import_questions as import_questions,
    )
    from evals.suites.io import (
        format_of as format_of,
    )
    from evals.suites.io import (
        load_suite as load_suite,
    )
    from evals.suites.io import (
        parse_suite as parse_suite,
    )
    from evals.suites.io import (
        yaml_line as yaml_line,
    )
    from evals.suites.sweep import (
        parse_depths as parse_depths,
    )
    from evals.suites.sweep import (
        parse_lengths as parse_lengths,
    )
    from evals.suites.sweep import (
        sweep as sweep,
    )
    from evals.summary import (
        LONG_CONTEXT as LONG_CONTEXT,
    )
    from evals.summary import (
        NO_CONTEXT as NO_CONTEXT,
    )
    from evals.summary import (
        CaseRow as CaseRow,
    )
    from evals.summary import (
        ErrorClassCount as ErrorClassCount,
    )
    from evals.summary import (
        GroupSummary as GroupSummary,
    )
    from evals.summary import (
        PairedComparison as PairedComparison,
    )
    from evals.summary import (
        RunSummary as RunSummary,
    )
    from evals.summary import (
        compare as compare,
    )
    from evals.summary import (
        health_of as health_of,
    )
    from evals.summary import (
        summarize as summarize,
    )
    from evals.summary import (
        verdict_markdown as verdict_markdown,
    )
    from evals.tokens import (
        ServerTokenizer as ServerTokenizer,
    )
    from evals.tokens import (
        local_tokenizer as local_tokenizer,
    )
    generate_suite = _suites_registry.generate
    probe_endpoint = _probe.probe
    render_suite_summary = _suites_summary.render
    suite_kinds = _suites_registry.list_kinds
    summarize_suite = _suites_summary.summarize
