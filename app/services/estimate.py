"""How many cases, tokens and dollars a run will take, before it starts.

Input tokens are each strategy's own estimate (``Strategy.estimate_tokens``) counted with the local
cl100k tokenizer: ``no_context`` sends the question; ``long_context`` the question's documents (cut
to the window when its truncation policy allows, nothing when it would refuse them); retrieval
strategies send ``k`` chunks of ``chunk_tokens`` (or ``budget_tokens``), never more than the
documents hold; a plugin's strategy says what it sends. Output tokens
are each endpoint's ``max_output_tokens``: an upper bound. Cost uses the endpoints' prices with no
cached input, so a server's prefix cache can only make the run cheaper.
"""

from __future__ import annotations

from sqlmodel import Session

from app.schemas import RunCreate, RunEstimate
from evals import EstimateContext, Usage, build_strategy, is_judge_scorer, local_tokenizer, uses_embeddings


def estimate(session: Session, body: RunCreate) -> RunEstimate:
    from app.services.runs import build_spec

    spec, suite, endpoints = build_spec(session, body)
    built = [(s, build_strategy(s, index=i)) for i, s in enumerate(spec.strategies)]
    est = EstimateContext(suite, local_tokenizer("cl100k"), system_prompt=spec.system_prompt)
    by_strategy: dict[str, dict[str, float]] = {}
    totals = {"cases": 0, "prompt": 0, "completion": 0, "cost": 0.0, "not_sent": 0}
    for endpoint in endpoints:
        for spec_s, strategy in built:
            row = by_strategy.setdefault(spec_s.key, {"cases": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                      "cost_usd": 0.0, "not_sent": 0})
            for q in suite.questions:
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
    if totals["not_sent"]:
        assumptions.append(f"{totals['not_sent']} long-context case(s) exceed the window and will not be sent")
    return RunEstimate(cases=int(totals["cases"]), prompt_tokens=int(totals["prompt"]),
                       completion_tokens=int(totals["completion"]), cost_usd=float(totals["cost"]),
                       by_strategy=by_strategy, assumptions=assumptions)
