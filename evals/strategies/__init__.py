"""Context strategies, registered by name. Importing this package registers the built-in ones."""

from evals.strategies import agentic, context, rag  # noqa: F401  (registration)
from evals.strategies.base import (
    STRATEGIES,
    CaseContext,
    Strategy,
    StrategyOutput,
    build_strategy,
    register_strategy,
)

__all__ = ["STRATEGIES", "CaseContext", "Strategy", "StrategyOutput", "build_strategy", "register_strategy"]
