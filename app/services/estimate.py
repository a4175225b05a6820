"""How many cases, tokens and dollars a run will take, before it starts.

Input tokens are each strategy's own estimate (``Strategy.estimate_tokens``) counted with the local
cl100k tokenizer: ``no_context`` sends the question; ``long_context`` the question's documents (cut
to the window when its truncation policy allows, nothing when it would refuse them); retrieval
strategies send ``k`` chunks of ``chunk_tokens`` (or ``budget_tokens``), never more than the
documents hold; a plugin's strategy says what it sends. Output tokens
are each endpoint's ``max_output_tokens``: an upper bound. Cost uses the endpoints' prices with no
cached input, so a server's prefix cache can only make the run cheaper. Under a benchmark preset
(``evals.presets``) each case counts the preset's filled prompt and its task's output limit instead,
and a long-context case whose prompt, output and margin exceed the window counts as not sent.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.schemas import RunCreate, RunEstimate
from evals import (
    Endpoint,
    EstimateContext,
    Question,
    Usage,
    build_strategy,
    is_judge_scorer,
    local_tokenizer,
    presets,
    uses_embeddings,
)


def _preset_case_tokens(est: EstimateContext, est_prompts: dict[str, int], q: Question, task: presets.TaskPrompt,
                        strategy: Any, endpoint: Endpoint) -> tuple[int, int, bool]:
    """(input tokens, output tokens, sent) of one case under a benchmark preset: the filled template
    (plus the chat reserve) against the window minus the task's output budget and the margin, as
    ``long_context`` checks it before sending."""
    out = task.max_tokens or endpoint.max_output_tokens
    params = strategy.params
    if getattr(strategy, "retrieval", False):
        k, size = getattr(params, "k", 5), getattr(params, "chunk_tokens", 256)
        frame = est.count(presets.render(task, q, "").text()) + presets.CHAT_RESERVE
        return frame + min(k * size, est.at(q, endpoint).context_tokens()), out, True
    key = q.id
    if key not in est_prompts:
        context = presets.render_documents(task, est.suite.context_documents(q))
        est_prompts[key] = est.count(presets.render(task, q, context).text()) + presets.CHAT_RESERVE
    total = est_prompts[key]
    window = endpoint.context_window
    if window is not None and spec_is_long_context(strategy):
        margin = getattr(params, "margin_tokens", 0)
        if total + out + margin > window:
            if getattr(params, "truncation", "error") == "error":
                return 0, 0, False
            total = max(window - out - margin, 0)
    return total, out, True


def spec_is_long_context(strategy: Any) -> bool:
    return hasattr(strategy.params, "truncation") and not getattr(strategy, "retrieval", False)


def estimate(session: Session, body: RunCreate) -> RunEstimate:
    from app.services.runs import build_spec

    spec, suite, endpoints = build_spec(session, body)
    built = [(s, build_strategy(s, index=i)) for i, s in enumerate(spec.strategies)]
    est = EstimateContext(suite, local_tokenizer("cl100k"), system_prompt=spec.system_prompt)
    preset = presets.preset_of(suite.metadata, spec.preset)
    est_prompts: dict[str, int] = {}
    by_strategy: dict[str, dict[str, float]] = {}
    totals = {"cases": 0, "prompt": 0, "completion": 0, "cost": 0.0, "not_sent": 0}
    for endpoint in endpoints:
        for spec_s, strategy in built:
            row = by_strategy.setdefault(spec_s.key, {"cases": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                      "cost_usd": 0.0, "not_sent": 0})
            for q in suite.questions:
                task = preset.prompt_for(q)
                if task is not None and spec_s.name != "agentic":
                    tokens, out, sent = _preset_case_tokens(est, est_prompts, q, task, strategy, endpoint)
                else:
                    tokens, sent = strategy.estimate_tokens(est.at(q, endpoint))
                    out = endpoint.max_output_tokens if sent else 0
                cost = endpoint.cost(Usage(prompt_tokens=tokens, completion_tokens=out)) or 0.0
                row["cases"] += 1
                row["prompt_tokens"] += tokens
                row["completion_tokens"] += out
                row["cost_usd"] += cost
                row["not_sent"] += 0 if sent else 1
                totals["cases"] += 1
                totals["prompt"] += tokens
                totals["completion"] += out
                totals["cost"] += cost
                totals["not_sent"] += 0 if sent else 1
    assumptions = [
        "input tokens counted with cl100k on the prompts each strategy builds",
        "output tokens at each endpoint's max_output_tokens (an upper bound)",
        "no cached input: prefix caching only lowers the cost",
    ]
    assumptions.extend(dict.fromkeys(st.estimate_note for _, st in built if st.estimate_note))
    if any(is_judge_scorer(n) for n in spec.scorers):
        assumptions.append("judge calls (scorers graded by a model, such as llm_judge) are not counted")
    if any(uses_embeddings(getattr(st.params, "retriever", None)) for _, st in built):
        assumptions.append("embedding calls of dense and hybrid retrieval are not counted")
    if preset.name != "ctxeval":
        assumptions.append(f"prompts and output limits of the '{preset.name}' preset")
    if totals["not_sent"]:
        assumptions.append(f"{totals['not_sent']} long-context case(s) exceed the window and will not be sent")
    return RunEstimate(cases=int(totals["cases"]), prompt_tokens=int(totals["prompt"]),
                       completion_tokens=int(totals["completion"]), cost_usd=float(totals["cost"]),
                       by_strategy=by_strategy, assumptions=assumptions, over_window=int(totals["not_sent"]))
