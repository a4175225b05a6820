"""A plugin module that registers a strategy when imported."""

from evals import registry
from evals.strategies.base import CaseContext, Strategy, StrategyOutput


@registry.strategy()
class Shout(Strategy):
    """Answers with the question in capitals."""

    name = "shout_fixture"

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        return StrategyOutput(answer=ctx.question.question.upper())
