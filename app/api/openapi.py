"""The OpenAPI schema with a description on every field of every public schema.

Most response shapes are the engine's own models (``evals.domain``, ``evals.summary``, ``evals.probe``),
whose fields are documented in ``docs/``; a field that carries no ``description`` of its own gets one
here when the schema is built: first by ``Schema.field``, then by the field name alone (names mean one
thing everywhere: ``endpoint``, ``strategy``, ``n``...). A field with its own description keeps it.
``tests/app/api/test_openapi_docs.py`` fails when a field is left without one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

# by field name, for any schema
COMMON: dict[str, str] = {
    "id": "identifier",
    "name": "name",
    "endpoint": "endpoint name",
    "endpoints": "endpoint names",
    "strategy": "strategy key (its name with the parameters that differ from the defaults, e.g. rag[k=5])",
    "strategy_name": "registered strategy name (rag, long_context, ...)",
    "scorer": "scorer name",
    "scorers": "scorer names; the first is the primary score",
    "n": "number of cases behind the value",
    "count": "total number of items (not only this page)",
    "data": "this page of items",
    "case_id": "stable id of the case: hash of question, endpoint and strategy",
    "question_id": "the question's id in its suite",
    "position": "index in its list (0-based)",
    "outcome": "ok, over_window, declined, no_answer, error or judge_error",
    "error_class": "what failed, when the outcome is error (timeout, rate_limited, server_error, ...)",
    "error_message": "the failure as text, key scrubbed",
    "scores": "score per scorer (null: the scorer does not apply to this case)",
    "prompt_tokens": "input tokens",
    "completion_tokens": "output tokens",
    "cached_tokens": "input tokens the server served from its prefix cache",
    "reasoning_tokens": "output tokens spent on reasoning",
    "estimated_prompt_tokens": "input tokens counted locally before sending",
    "cost_usd": "USD at the endpoint's prices",
    "latency_s": "seconds from request to the last token",
    "ttft_s": "seconds to the first token (streamed answers only)",
    "context_tokens": "tokens of the question's full long context",
    "depth": "where the evidence sits in the long context, percent from the start",
    "route": "the path a routing strategy took (self_route: rag or long_context)",
    "from_cache": "the response came from the response cache",
    "finished_at": "when it finished (UTC)",
    "created_at": "when it was stored (UTC)",
    "updated_at": "when it last changed (UTC)",
    "started_at": "when execution started (UTC)",
    "metadata": "free-form fields",
    "description": "free-text description",
    "text": "the text",
    "title": "title",
    "doc_id": "the document's id in its suite",
    "start": "character offset where it starts",
    "end": "character offset where it ends (exclusive)",
    "mean": "mean",
    "low": "lower bound of the interval",
    "high": "upper bound of the interval",
    "level": "confidence level of the interval",
    "bucket": "context-length bucket",
    "versus": "what it is compared with",
    "label": "display label",
    "model": "model name",
    "usage": "token counts reported by the server",
    "status": "status",
    "difference": "mean difference with its interval",
    "p_value": "two-sided p-value (exact McNemar for 0/1 scores, sign-flip test otherwise)",
    "p_adjusted": "p_value Holm-adjusted across the family of tests it belongs to",
    "answered": "cases that got an answer",
    "unanswered": "cases without an answer, per reason (outcome)",
    "unanswered_share": "share of cases without an answer",
    "scores_answered": "per scorer: mean with its interval over the answered cases only",
    "effective_length": "RULER effective context length of the group",
    "alpha": "significance level of the tests",
    "threshold": "score the length must exceed",
    "length": "tokens",
    "n_buckets": "length buckets considered",
    "verdict": "the conclusion in words",
    "more_questions": "questions more that would be needed to decide",
    "sentence": "the conclusion as one sentence",
    "baseline_run_id": "the stored run that baseline checks compare with",
    "checks": "CI checks (docs/ci.md syntax)",
    "suite_id": "the stored suite version",
}

# by schema and field, where the name alone is not enough
SPECIFIC: dict[str, dict[str, str]] = {
    "ErrorBody": {"error": "what went wrong"},
    "ErrorDetail": {"message": "what is wrong and how to fix it", "field": "the field to fix, as a path "
                    "(strategies[1].params.k)", "line": "line of the uploaded file", "source": "the file"},
    "HealthPublic": {"status": "ok when the database answers", "database": "sqlite or postgresql",
                     "execution": "inprocess (this process executes runs) or none (workers do)",
                     "auth_required": "whether /api routes need a bearer token", "version": "engine version"},
    "Endpoint": {"name": "unique name: letters, digits, . _ -", "model": "model name sent in requests",
                 "api_key": "write-only: stored apart, never returned", "context_window": "tokens the server "
                 "accepts (prompt + output); null: unknown, a probe fills it in",
                 "max_output_tokens": "output token limit per request",
                 "max_tokens_field": "which request field carries the output limit",
                 "temperature": "sampling temperature (null: the server's default)",
                 "seed": "sampling seed (null: none sent)", "concurrency": "requests at once, across all workers",
                 "max_retries": "retries of a failed request (429, 5xx, timeouts)",
                 "supports_tools": "whether native tool calls work (null: unknown, a probe fills it in)",
                 "embedding_model": "model for /v1/embeddings (dense retrieval)",
                 "extra_body": "extra fields merged into every request body", "api": "which API the "
                 "engine calls", "prefill": "how an answer prefix is sent", "base_url": "the server's root URL",
                 "price_input": "USD per 1M uncached input tokens", "price_cached_input": "USD per 1M cached "
                 "input tokens (null: the input price)", "price_output": "USD per 1M output tokens",
                 "tokenizer": "auto | server | cl100k | deepseek-v4 | path to tokenizer.json",
                 "timeout_s": "read timeout between stream chunks", "deadline_s": "wall-clock limit per request"},
    "EndpointPublic": {"id": "endpoint id", "has_api_key": "whether a key is stored (the key never leaves)"},
    "SuitePublic": {"id": "suite id", "name": "the suite's name", "content_hash": "sha256 of its content",
                    "default_scorers": "scorers a run uses when it names none", "n_documents": "documents",
                    "n_questions": "questions", "n_runs": "runs on this version"},
    "Suite": {"name": "the suite's name", "documents": "the documents questions are asked about",
              "questions": "the questions", "default_scorers": "scorers a run uses when it names none"},
    "Document": {"id": "unique id in the suite, cited by evidence"},
    "Question": {"id": "unique id in the suite", "question": "the question as asked",
                 "answers": "reference answers (empty: unanswerable)", "evidence": "where the answer is",
                 "doc_ids": "documents its long context consists of (null: every document)"},
    "QuestionPublic": {"id": "the question's id", "question": "the question as asked",
                       "answers": "reference answers (empty: unanswerable)", "evidence": "where the answer is",
                       "doc_ids": "documents its long context consists of (null: every document)"},
    "Evidence": {"doc_id": "the document holding the evidence"},
    "StrategySpec": {"name": "a registered strategy (GET /api/strategies)", "params": "its parameters "
                     "(JSON Schema in GET /api/strategies)", "label": "a name telling two specs of one "
                     "strategy apart"},
    "RunSpec": {"suite_hash": "content hash of the suite version", "suite_name": "the suite's name",
                "strategies": "strategies run", "system_prompt": "system prompt sent (null: the engine's)",
                "engine_version": "engine version that froze the spec"},
    "RunCreate": {"suite_id": "the stored suite version", "endpoint_ids": "stored endpoints to test",
                  "strategies": "strategies with parameters (GET /api/strategies)",
                  "system_prompt": "system prompt (null: the engine's)", "embeddings": "where dense "
                  "retrieval gets embeddings", "name": "display name"},
    "RunEmbeddings": {"source": "auto, endpoint or local", "endpoint_id": "a stored endpoint for "
                      "/v1/embeddings", "model": "embedding model name", "batch_size": "texts per request"},
    "RunEstimate": {"cases": "cases the run will execute", "by_strategy": "the same per strategy",
                    "assumptions": "what the estimate assumes"},
    "RunProgress": {"done": "cases stored", "total": "cases planned", "fraction": "done / total",
                    "outcomes": "stored cases per outcome", "elapsed_s": "seconds since this attempt started"},
    "RunPublic": {"id": "run id", "name": "display name", "suite_id": "the suite version", "status":
                  "queued, running, completed, failed or cancelled", "attempt": "1, then +1 per resume",
                  "total_cases": "cases planned", "rerun_of": "the run this one repeats", "error": "why it "
                  "failed", "spec_hash": "identifies the spec", "spec": "everything that determines the "
                  "results (no keys)", "progress": "live progress"},
    "CaseResult": {"prompt": "every message as sent", "answer": "the model's answer (untrusted text)",
                   "reasoning": "the model's reasoning output", "calls": "every request the case made",
                   "retrieved": "chunks retrieved, in rank order", "truncation": "how the prompt was cut to "
                   "fit, if it was", "steps": "steps of an agentic strategy"},
    "CallRecord": {"role": "what the call was for (answer, judge, route, ...)", "finish_reason": "why the "
                   "model stopped", "model": "model the server reported", "system_fingerprint": "the "
                   "server's fingerprint", "attempts": "tries including retries", "detail": "extra facts"},
    "Usage": {},
    "Truncation": {"policy": "how the context was cut", "dropped_tokens": "tokens left out"},
    "RetrievedChunk": {"chunk_id": "chunk id", "score": "retriever score", "rank": "rank (0 = best)",
                       "gold": "overlaps gold evidence"},
    "ProbeResult": {"base_url": "the server's root URL probed", "reachable": "GET /v1/models got any answer",
                    "models_listed": "GET /v1/models answered 200 with a list", "served_models": "ids it "
                    "lists", "context_window": "window the server reports", "context_window_source":
                    "where the window came from", "tokenize_works": "/tokenize answers", "chat_works":
                    "a chat completion answered", "chat_usage": "the chat response reports usage",
                    "chat_latency_s": "seconds of that request", "system_fingerprint": "the server's "
                    "fingerprint", "reasoning_field": "where reasoning text arrives", "stream_works":
                    "streaming works", "stream_usage": "the stream reports usage", "ttft_s": "seconds to "
                    "the first streamed token", "cached_tokens": "cached tokens on a repeated prompt",
                    "embeddings_work": "/v1/embeddings returns a vector", "embedding_dim": "its length",
                    "tool_calls_work": "native tool calls work", "errors": "why each failed check failed"},
    "Estimate": {"mean": "mean (null: no values)", "n": "values behind it",
                 "method": "how the interval was computed (wilson, bca, newcombe, ...)"},
    "Total": {"sum": "sum over the cases that report it", "mean": "mean over those cases",
              "n": "cases that report it", "unknown": "cases that do not"},
    "Spread": {"p50": "median", "p95": "95th percentile", "n": "cases that report it"},
    "Routes": {"counts": "cases per route", "long_context_share": "share routed to long context"},
    "GroupSummary": {"n": "cases of the group", "scores": "per scorer: mean with 95% interval",
                     "outcomes": "cases per outcome", "token_share": "mean input tokens / those of "
                     "token_share_versus on the same endpoint", "token_share_versus": "the strategy compared "
                     "with (long_context)", "routes": "routing strategies: cases per route"},
    "LengthBucket": {"lo": "tokens above this", "hi": "tokens up to this (null: no upper bound)",
                     "label": "the bucket as shown (≤1K, 1K–2K, ...)"},
    "LengthCell": {"scores": "per scorer: mean with 95% interval in this bucket"},
    "GridCell": {"scores": "per scorer: mean and n in this depth × length cell"},
    "CellMean": {},
    "RunSummary": {"primary": "the scorer crossovers and charts use", "n": "cases summarised",
                   "groups": "one per endpoint × strategy", "by_length": "scores per context-length bucket",
                   "grid": "scores per depth × length cell", "crossovers": "where retrieval catches up with "
                   "long context", "attribution": "why retrieval answers are wrong", "judge_agreement":
                   "each judge scorer against exact metrics", "health": "how the run went",
                   "recommendation": "which group to use, and why", "comparisons": "every group against the "
                   "best, paired, Holm-adjusted"},
    "AttributionRow": {"n": "wrong answers on questions with gold evidence", "correct": "right answers",
                       "wrong": "wrong answers", "not_retrieved": "wrong with evidence not retrieved",
                       "retrieved_wrong": "wrong although the evidence was retrieved",
                       "not_retrieved_share": "not_retrieved / wrong"},
    "JudgeAgreement": {"judge": "the judge scorer", "versus": "the exact metric compared",
                       "n": "cases both scored", "kappa": "Cohen's kappa", "agreement": "raw agreement",
                       "both_correct": "both say correct", "judge_only": "only the judge says correct",
                       "metric_only": "only the metric says correct", "both_wrong": "both say wrong"},
    "PairedComparison": {"a": "strategy A", "b": "strategy B", "endpoints": "endpoints paired within",
                         "n": "questions both scored", "mean_a": "A's mean on them", "mean_b": "B's mean",
                         "difference": "mean of B − A, paired-bootstrap 95% interval", "wins": "B higher",
                         "losses": "B lower", "ties": "equal", "mcnemar_p": "exact McNemar p (0/1 scores)",
                         "disagreements": "questions where the two scores differ"},
    "PairComparison": {"baseline": "the baseline run's group", "other": "the other run's group"},
    "RunPairComparison": {"pairs": "matched endpoint × strategy groups"},
    "RunAgainstBaseline": {"run": "the run compared", "comparison": "its groups against the baseline's"},
    "RunsComparison": {"baseline": "the run the others are measured against"},
    "CheckResult": {"check": "the check as written", "kind": "absolute, difference or baseline",
                    "status": "passed, failed, or error when it could not be evaluated",
                    "observed": "the value the check compared", "threshold": "the value it was compared with",
                    "op": "the comparison (>=, <=, ...)", "stat": "what was compared: the mean or an interval "
                    "bound", "message": "the result in words"},
    "RunImport": {"spec": "the spec the CLI built for the run"},
    "WorkerPublic": {"executor_id": "the executor's id (DBOS executor)", "host": "the machine it runs on",
                     "pid": "its process id", "last_seen": "its last heartbeat (UTC)"},
    "BucketTest": {"difference": "mean of strategy − versus in this bucket, paired interval"},
    "Crossover": {"versus": "the strategy caught up with (long_context)", "length": "tokens from which the "
                  "strategy scores at least as well at every longer length (null: none)",
                  "n_buckets": "length buckets compared", "tests": "the per-bucket paired tests",
                  "interval_low": "earliest crossover bucket over question resamples",
                  "interval_high": "latest crossover bucket over question resamples (null: none in that share)",
                  "no_crossover_share": "share of resamples with no crossover"},
    "Comparison": {"versus_endpoint": "endpoint of the best group", "versus": "the best group's strategy",
                   "difference": "mean of this group − the best, paired interval", "test": "mcnemar_exact or "
                   "sign_flip"},
    "EffectiveLength": {"length": "longest length bucket up to which the score stays above the threshold "
                        "(null: none)"},
    "ErrorClassCount": {"example": "one error message of that class, key scrubbed"},
    "RunHealth": {"errors": "cases with outcome error or judge_error", "error_share": "errors / cases",
                  "top_errors": "most frequent error classes", "reason": "why the run failed or completed "
                  "with errors"},
    "Candidate": {"cost": "mean cost per question in the recommendation's cost basis",
                  "latency_p50": "median latency in seconds", "cost_ratio": "cost / the best's cost",
                  "latency_ratio": "latency / the best's latency", "verdict": "best, within, worse, "
                  "undecided or costlier", "difference": "mean of this − the best, interval at level 1 − 2α"},
    "RecommendationScope": {"n_questions": "questions in this scope", "best": "the best-scoring group",
                            "pick": "the recommended group", "candidates": "every group considered"},
    "Recommendation": {"margin": "the largest score loss accepted for a cheaper pick",
                       "cost_basis": "cost_usd, or prompt_tokens when no endpoint has prices",
                       "overall": "the verdict over every question", "by_length": "the verdict per length bucket"},
}


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Fill in a description on every property of every component schema that lacks one."""
    for name, component in (schema.get("components", {}).get("schemas") or {}).items():
        specific = SPECIFIC.get(name, {})
        base = name.removesuffix("Create").removesuffix("Update").removesuffix("Public")
        inherited = SPECIFIC.get(base, {}) if base != name else {}
        for field, prop in (component.get("properties") or {}).items():
            if prop.get("description"):
                continue
            text = specific.get(field) or inherited.get(field) or COMMON.get(field)
            if text:
                prop["description"] = text
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``, ``/docs``, ``/redoc``) the described schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes, tags=app.openapi_tags))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
