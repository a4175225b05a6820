"""Context strategies. Each registers itself with ``@evals.registry.strategy()``; the registry imports
the built-in modules the first time strategies are asked for."""

from evals.strategies.base import CaseContext, Strategy, StrategyOutput, build_strategy

__all__ = ["CaseContext", "Strategy", "StrategyOutput", "build_strategy"]
