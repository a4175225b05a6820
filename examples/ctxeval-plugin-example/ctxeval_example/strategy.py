"""``keyword_window``: send only the paragraphs that share words with the question.

A strategy is a class with a ``name``, a pydantic ``Params`` model and an async ``answer``; the
``@registry.strategy()`` decorator is the whole registration. The dashboard form, the API catalogue,
``ctxeval components`` and run validation all read it from there.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from evals import registry
from evals.strategies.base import CaseContext, EstimateContext, Strategy, StrategyOutput

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "an", "of", "in", "on", "is", "what", "which", "who", "where", "does", "do", "to", "for"}


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


class KeywordWindowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_paragraphs: int = Field(default=4, ge=1, le=100, description="paragraphs sent, best overlap first")


@registry.strategy(label="Keyword window")
class KeywordWindow(Strategy):
    """Only the paragraphs sharing most words with the question, in document order."""

    name = "keyword_window"
    Params = KeywordWindowParams

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        return est.frame_tokens() + min(est.context_tokens(), 200 * self.params.max_paragraphs), True

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        asked = words(ctx.question.question)
        paragraphs = [(d.title, p) for d in ctx.documents for p in d.text.split("\n\n") if p.strip()]
        ranked = sorted(range(len(paragraphs)), key=lambda i: -len(asked & words(paragraphs[i][1])))
        keep = sorted(ranked[: self.params.max_paragraphs])
        context = "\n\n".join(f"[{paragraphs[i][0]}]\n{paragraphs[i][1]}" for i in keep)
        messages = self.system(ctx, "Answer the question from the passages. Reply with the answer only.") + [
            {"role": "user", "content": f"{context}\n\nQuestion: {ctx.question.question}\nAnswer:"}]
        resp = await ctx.llm.chat(messages)
        return StrategyOutput(answer=resp.text, reasoning=resp.reasoning, prompt=messages,
                              metadata={"paragraphs": len(keep)})
