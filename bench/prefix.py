"""5. Prefix caching on a real server.

The bundled SmolLM2-135M served by llama.cpp (llama-cpp-python's server with its prompt cache, started
by :class:`app.localmodel.server.LocalModelServer`), one long context and several questions over it, through
ctxeval's runner with the ``long_context`` strategy at concurrency 1:

* prefix-aware (ctxeval's layout): every question gets the documents in the same order, documents
  first and the question last, so after the first case the server reuses the context's KV cache;
* shuffled (the reference): each question gets the same documents in an order of its own, as a tool
  that does not keep prompts prefix-stable would send them.

Each repetition uses a context of its own, so neither variant finds the other's prompts in the cache.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from bench.common import Figure, Row, Sizes, alternate, skipped
from bench.data import corpus_suite
from evals.domain import CaseResult, Outcome, StrategySpec, Suite
from evals.retrieval.base import IndexCache
from evals.runner import Engine, make_spec, plan_cases, run_all

NAME = "prefix"
N_DOCS = 5


def local_unavailable() -> str | None:
    """None when the bundled model can be served here, else why not."""
    import importlib.util

    from app.localmodel import server as local_model

    missing = local_model.missing_server_modules()
    if importlib.util.find_spec(local_model.BUNDLED_PACKAGE) is None:
        missing.append(local_model.BUNDLED_PACKAGE)
    if missing:
        return f"the 'local' extra is not installed (missing {', '.join(missing)})"
    return None


def suites(tokens: int, questions: int, seed: int) -> tuple[Suite, Suite]:
    """The prefix-aware suite and its shuffled twin: same documents and questions, each question of the
    twin reading the documents in an order of its own."""
    base = corpus_suite(tokens, questions, seed=1000 + seed, doc_tokens=max(50, tokens // N_DOCS))
    ids = [d.id for d in base.documents]
    rng = random.Random(f"bench-prefix:{seed}")
    orders: list[list[str]] = []
    for _ in base.questions:
        order = ids[:]
        for _ in range(100):  # with few documents no order may meet both wishes: take the last try
            if len(ids) < 2 or (order != ids and not (orders and order[0] == orders[-1][0])):
                break
            rng.shuffle(order)
        orders.append(order)
    aware = base.model_copy(update={"questions": [q.model_copy(update={"doc_ids": ids}) for q in base.questions]})
    shuffled = base.model_copy(update={"questions": [q.model_copy(update={"doc_ids": o})
                                                     for q, o in zip(base.questions, orders, strict=True)]})
    return Suite.model_validate(aware.model_dump()), Suite.model_validate(shuffled.model_dump())


async def run_suite(suite: Suite, endpoint: Any) -> tuple[float, list[CaseResult]]:
    import time

    start = time.perf_counter()
    spec = make_spec(suite, [endpoint], [StrategySpec(name="long_context")])
    async with Engine(suite=suite, endpoints={endpoint.name: endpoint}, spec=spec, cache=None,
                      index_cache=IndexCache()) as engine:
        results = [r async for r in run_all(engine, plan_cases(spec, suite))]
    return time.perf_counter() - start, results


def cached_share(results: list[CaseResult]) -> float:
    prompt = sum(r.usage.prompt_tokens or 0 for r in results)
    cached = sum(r.usage.cached_tokens or 0 for r in results)
    return cached / prompt if prompt else 0.0


def run(sizes: Sizes, log: Callable[[str], None] = print) -> list[Row]:
    tokens, n = sizes.prefix_context_tokens, sizes.prefix_questions
    n_ctx = 4096 if tokens <= 3000 else 8192
    what = "Prefix caching on llama.cpp: prefix-aware vs shuffled document order"
    cond = (f"bundled SmolLM2-135M (Q4_1) on llama-cpp-python's server, n_ctx {n_ctx}, its prompt cache on; one "
            f"context of ~{tokens:,} tokens (cl100k) in {N_DOCS} documents, {n} questions, long_context, "
            f"max 16 output tokens, concurrency 1; median of {sizes.heavy_reps} alternating reps")
    reason = local_unavailable()
    if reason is not None:
        return [skipped(NAME, what, cond, f"skipped: {reason}")]
    from app.localmodel.server import LocalModelServer, local_endpoint

    info: dict[str, Any] = {"cached_share": {"aware": [], "shuffled": []}, "prompt_tokens": {}, "correct": {}}
    with LocalModelServer(n_ctx=n_ctx) as server:
        log(f"  model up in {server.startup_s:.1f} s; {n} questions over ~{tokens} tokens")
        endpoint = local_endpoint(server, max_output_tokens=16, concurrency=1).model_copy(update={"max_retries": 0})
        info["startup_s"] = server.startup_s

        def variant(kind: str) -> Callable[[int], float]:
            def call(rep: int) -> float:
                aware, shuffled = suites(tokens, n, rep)
                seconds, results = asyncio.run(run_suite(aware if kind == "aware" else shuffled, endpoint))
                bad = [r for r in results if r.outcome in (Outcome.error, Outcome.over_window)]
                if bad:
                    raise RuntimeError(f"{kind}: {len(bad)} cases failed: {bad[0].error_message}")
                info["cached_share"][kind].append(cached_share(results))
                info["prompt_tokens"].setdefault(kind, []).append(sum(r.usage.prompt_tokens or 0 for r in results))
                info["correct"].setdefault(kind, []).append(sum(r.scores.get("exact_match") == 1.0 for r in results))
                return seconds
            return call

        # a first request loads the weights into the page cache; neither variant should pay for it
        asyncio.run(run_suite(suites(200, 1, -1)[0], endpoint))
        samples = alternate({"aware": variant("aware"), "shuffled": variant("shuffled")}, sizes.heavy_reps,
                            warmup=False, log=log)
    share = {k: sorted(v)[len(v) // 2] if v else None for k, v in info["cached_share"].items()}
    return [Row(bench=NAME, what=what, conditions=cond,
                ctxeval=Figure("prefix-aware (ctxeval)", "s", samples["aware"], higher_is_better=False,
                               detail=f"cached {share['aware']:.0%} of prompt tokens"),
                reference=Figure("shuffled document order", "s", samples["shuffled"], higher_is_better=False,
                                 detail=f"cached {share['shuffled']:.0%} of prompt tokens"),
                extra={"samples": samples, "n_ctx": n_ctx, **info})]
