"""Strategies that put whole documents in the prompt: ``no_context`` and ``long_context``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evals import presets, prompts, registry
from evals.domain import Outcome, Question, Suite, Truncation, stable_hash
from evals.presets import CHAT_RESERVE, Rendered, TaskPrompt
from evals.strategies.base import (
    MESSAGE_OVERHEAD,
    CaseContext,
    EstimateContext,
    Strategy,
    StrategyOutput,
    context_budget,
)
from evals.tokens import truncate_tokens


@registry.strategy(order=0, control=True)
class NoContext(Strategy):
    """The question alone: does the model know the answer already?"""

    name = "no_context"

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        task = ctx.preset.prompt_for(ctx.question)
        if task is not None and task.no_context_template is not None:
            rendered = presets.render(task, ctx.question, "", template=task.no_context_template)
            return await send_rendered(ctx, rendered, StrategyOutput())
        messages = self.system(ctx, prompts.SYSTEM_NO_CONTEXT) + [
            {"role": "user", "content": prompts.no_context_user(ctx.question.question)}]
        resp = await ctx.llm.chat(messages)
        return StrategyOutput(answer=resp.text, reasoning=resp.reasoning, prompt=messages)

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        text = (est.system_prompt or prompts.SYSTEM_NO_CONTEXT) + prompts.no_context_user(est.question.question)
        return est.count(text) + 2 * MESSAGE_OVERHEAD, True


async def send_rendered(ctx: CaseContext, rendered: Rendered, out: StrategyOutput, *, role: str = "answer"
                        ) -> StrategyOutput:
    """Send a preset's prompt (answer prefix, output limit, stop rules) and fill ``out`` with the reply;
    ``metadata`` records the preset and how the answer prefix was sent."""
    resp = await ctx.llm.chat(rendered.messages(), role=role, answer_prefix=rendered.answer_prefix,
                              max_tokens=rendered.max_tokens, stop=rendered.stop or None,
                              temperature=rendered.temperature)
    out.answer, out.reasoning, out.prompt = resp.text, resp.reasoning, ctx.llm.sent
    out.metadata["preset"] = ctx.preset.name
    if rendered.then is not None and resp.text.strip():  # LongBench v2 CoT: the answer comes from a second call
        out.metadata["cot"] = resp.text.strip()
        second = rendered.then.replace("{cot}", resp.text.strip())
        resp2 = await ctx.llm.chat([{"role": "user", "content": second}], role=role,
                                   max_tokens=rendered.then_max_tokens, temperature=rendered.temperature)
        out.answer, out.reasoning, out.prompt = resp2.text, resp2.reasoning, ctx.llm.sent
    if rendered.answer_prefix:
        out.metadata["answer_prefix"] = rendered.answer_prefix
        out.metadata["answer_prefix_mode"] = ctx.llm.prefill_mode
    return out


def output_budget(ctx: CaseContext, rendered: Rendered) -> int:
    return rendered.max_tokens or ctx.endpoint.max_output_tokens


async def build_native(ctx: CaseContext, params: LongContextParams, task: TaskPrompt
                       ) -> tuple[Rendered, int, Truncation] | StrategyOutput:
    """A preset's long-context prompt sized against the window: the whole filled prompt, the answer prefix,
    a chat-template reserve, the output budget and the margin must fit, else it is refused (or the
    context truncated, when asked)."""
    q = ctx.question
    context = presets.render_documents(task, ctx.documents)
    rendered = presets.render(task, q, context)
    total = await ctx.count(rendered.text()) + CHAT_RESERVE
    truncation = Truncation(policy=params.truncation, dropped_tokens=0)
    window = ctx.endpoint.context_window
    out_tokens = output_budget(ctx, rendered)
    if window is not None and total + out_tokens + params.margin_tokens > window:
        over = total + out_tokens + params.margin_tokens - window
        if params.truncation == "error":
            truncation.dropped_tokens = over
            return StrategyOutput(
                outcome=Outcome.over_window, error_class="over_budget", truncation=truncation,
                error_message=(f"the prompt needs {total} tokens but the window {window} leaves "
                               f"{max(window - out_tokens - params.margin_tokens, 0)} (output {out_tokens}, margin "
                               f"{params.margin_tokens}); not sent"),
                metadata={"estimated_prompt_tokens": total, "preset": ctx.preset.name})
        context_tokens = await ctx.count(context)
        cut, dropped = truncate_tokens(ctx.tokenizer, context, max(context_tokens - over, 0), params.truncation)
        truncation.dropped_tokens = dropped
        rendered = presets.render(task, q, cut)
        total = await ctx.count(rendered.text()) + CHAT_RESERVE
    return rendered, total, truncation


class LongContextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    truncation: Literal["error", "head", "tail", "middle"] = Field(
        default="error", description="what to do when the documents exceed the token budget")
    margin_tokens: int = Field(default=64, ge=0, description="kept free besides the output tokens")


@dataclass
class LongContextPrompt:
    messages: list[dict[str, Any]]
    estimated_tokens: int
    truncation: Truncation


async def build_long_context(ctx: CaseContext, params: LongContextParams) -> LongContextPrompt | StrategyOutput:
    """The long-context messages, or a finished output when the documents do not fit and policy is error."""
    q = ctx.question.question
    system = ctx.system_prompt or prompts.SYSTEM
    block = prompts.render_documents(ctx.documents)
    block_tokens = await ctx.count(block)
    frame_tokens = await ctx.count(system + prompts.long_context_user("", q)) + 2 * MESSAGE_OVERHEAD
    window = ctx.endpoint.context_window
    truncation = Truncation(policy=params.truncation, dropped_tokens=0)
    budget = context_budget(ctx.endpoint, margin_tokens=params.margin_tokens, frame_tokens=frame_tokens)
    if budget is not None and block_tokens > budget:
        if params.truncation == "error":
            truncation.dropped_tokens = block_tokens - max(budget, 0)
            return StrategyOutput(
                outcome=Outcome.over_window, error_class="over_budget", truncation=truncation,
                error_message=(f"documents need {block_tokens} tokens but the budget is {max(budget, 0)} "
                               f"(window {window} − output {ctx.endpoint.max_output_tokens} − margin "
                               f"{params.margin_tokens} − prompt {frame_tokens}); not sent"),
                metadata={"estimated_prompt_tokens": block_tokens + frame_tokens})
        block, dropped = truncate_tokens(ctx.tokenizer, block, max(budget, 0), params.truncation)
        truncation.dropped_tokens = dropped
        block_tokens -= dropped
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": prompts.long_context_user(block, q)}]
    return LongContextPrompt(messages, block_tokens + frame_tokens, truncation)


@registry.strategy(order=1, baseline=True, preselected=True)
class LongContext(Strategy):
    """All of the question's documents in a stable order, documents first and the question last."""

    name = "long_context"
    Params = LongContextParams

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        task = ctx.preset.prompt_for(ctx.question)
        if task is not None:
            native = await build_native(ctx, self.params, task)  # type: ignore[arg-type]
            if isinstance(native, StrategyOutput):
                return native
            rendered, total, truncation = native
            return await send_rendered(ctx, rendered, StrategyOutput(
                truncation=truncation, metadata={"estimated_prompt_tokens": total}))
        built = await build_long_context(ctx, self.params)  # type: ignore[arg-type]
        if isinstance(built, StrategyOutput):
            return built
        resp = await ctx.llm.chat(built.messages)
        return StrategyOutput(answer=resp.text, reasoning=resp.reasoning, prompt=built.messages,
                              truncation=built.truncation,
                              metadata={"estimated_prompt_tokens": built.estimated_tokens})

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        """The documents cut to the window when the truncation policy allows; nothing when it refuses."""
        assert est.endpoint is not None
        frame, context = est.frame_tokens(), est.context_tokens()
        budget = context_budget(est.endpoint, margin_tokens=self.params.margin_tokens,  # type: ignore[attr-defined]
                                frame_tokens=frame)
        if budget is not None and context > budget:
            if self.params.truncation == "error":  # type: ignore[attr-defined]
                return 0, False
            context = max(budget, 0)
        return frame + context, True

    def prefix_key(self, question: Question, suite: Suite) -> str | None:
        ids = question.doc_ids if question.doc_ids is not None else [d.id for d in suite.documents]
        return stable_hash(ids)[:16]
