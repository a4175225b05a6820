"""The runner: plans the cases of a run, executes each one, and yields results as they finish.

``Engine.execute`` runs one case and never raises for endpoint or strategy faults: the returned
:class:`~evals.domain.CaseResult` carries the outcome and error class. ``run_all`` is the in-memory
runner (bounded concurrency per endpoint, prefix-aware ordering); the service drives
``Engine.execute`` from its durable queue instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from evals import prompts, registry
from evals.cache import ResponseCache
from evals.client import ModelClient
from evals.diagnostics import attribute, primary_answer_scorer
from evals.domain import (
    CaseResult,
    Endpoint,
    Outcome,
    RunSpec,
    StrategySpec,
    Suite,
    Usage,
    case_id_for,
    stable_hash,
)
from evals.embeddings import Embedder, EmbeddingSettings, make_embedder
from evals.errors import AnswerTooLongError, ContextOverflowError, CtxevalError, EndpointError, UserInputError
from evals.judge import Judge, Verdict
from evals.presets import Preset, first_line, preset_of
from evals.redact import scrub
from evals.retrieval.base import DEFAULT_INDEX_CACHE, IndexCache, RetrievalEnv, uses_embeddings
from evals.scorers import (
    Scorer,
    auto_retrieval_scorers,
    check_references,
    default_scorers,
    get_scorer,
    retrieval_recall,
    score_of,
)
from evals.strategies import CaseContext, Strategy, StrategyOutput, build_strategy
from evals.strategies.base import LLM
from evals.tokens import ServerTokenizer, Tokenizer, local_tokenizer


class CasePlan(BaseModel):
    """One case to execute: a question × endpoint × strategy of a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    question_id: str
    endpoint: str
    strategy: StrategySpec
    prefix_group: str | None = None  # cases sharing a long prompt prefix
    identity: dict[str, Any] = {}  # what the case's answer and scores depend on (``case_identity``)


def make_spec(suite: Suite, endpoints: Iterable[Endpoint], strategies: Iterable[StrategySpec],
              scorers: Iterable[str] | None = None, *, system_prompt: str | None = None,
              judge: Endpoint | None = None, embeddings: EmbeddingSettings | None = None,
              preset: str | None = None) -> RunSpec:
    """The frozen spec of a run; validates strategy parameters, the preset and scorer names up front.

    Without scorers the suite's defaults apply, else the preset's; a Kamradt suite with a judge endpoint
    is graded by Kamradt's 1–10 judge (``llm_judge:kamradt``) beside the substring match."""
    strategies = list(strategies)
    for i, s in enumerate(strategies):
        build_strategy(s, index=i)
    chosen = preset_of(suite.metadata, preset)
    for q in suite.questions:
        chosen.prompt_for(q)  # every question has a prompt in the preset
    names = list(scorers) if scorers is not None else list(suite.default_scorers)
    if not names:
        names = preset_scorers(chosen, suite)
    if not names:
        names = default_scorers()
    if scorers is None and chosen.name == "kamradt" and judge is not None and "llm_judge:kamradt" not in names:
        names.insert(0, "llm_judge:kamradt")
    for n in names:
        get_scorer(n)
    check_references(suite.questions, names)
    retrieves = any(registry.get("strategy", s.name).needs_retrieval for s in strategies)
    if retrieves and any(q.evidence for q in suite.questions):
        names.extend(n for n in auto_retrieval_scorers() if n not in names)
    return RunSpec(suite_hash=suite.content_hash, suite_name=suite.name,
                   endpoints=[e.public() for e in endpoints], strategies=strategies, scorers=names,
                   system_prompt=system_prompt, judge=judge.public() if judge is not None else None,
                   embeddings=embedding_spec(embeddings), preset=preset)


def preset_scorers(preset: Preset, suite: Suite) -> list[str]:
    """The scorers a preset names for the suite's questions, in first-seen order."""
    names: list[str] = []
    for q in suite.questions:
        task = preset.prompt_for(q)
        for n in task.scorers if task is not None else ():
            if n not in names:
                names.append(n)
    return names


def required_secrets(spec: RunSpec) -> list[str]:
    """Names of the secrets (pipeline tokens) the run's strategies need; the caller supplies their values
    (``Engine(secrets=...)``): the engine reads no environment."""
    return sorted({n for i, s in enumerate(spec.strategies) for n in build_strategy(s, index=i).required_secrets()})


def embedding_spec(settings: EmbeddingSettings | None) -> dict[str, Any] | None:
    """The embedding settings as stored in a spec: a separate embedding endpoint without its key."""
    if settings is None:
        return None
    data = settings.model_dump(mode="json", exclude={"endpoint"})
    if settings.endpoint is not None:
        data["endpoint"] = settings.endpoint.public()
    return data


# Endpoint settings that change what the model answers (not its key, concurrency, timeouts or prices).
_ANSWER_SETTINGS = ("base_url", "model", "max_output_tokens", "max_tokens_field", "temperature", "seed",
                    "context_window", "tokenizer", "extra_body")


def case_identity(spec: RunSpec, endpoint: dict[str, Any], strategy: StrategySpec, question_hash: str,
                  context_hash: str) -> dict[str, Any]:
    """The full identity of a case: the endpoint's base URL, model and generation settings, the
    strategy and its parameters, the question and its context documents (content hashes), the
    scorers, the system prompt, the judge model and the engine version. Two cases with the same
    identity are interchangeable; ``--resume`` reuses a stored case only when its identity matches."""
    judge = spec.judge or {}
    return {
        "endpoint": {k: endpoint.get(k) for k in _ANSWER_SETTINGS},
        "strategy": strategy.model_dump(mode="json"),
        "question": question_hash,
        "context": context_hash,
        "scorers": list(spec.scorers),
        "system_prompt": spec.system_prompt,
        "judge": {k: judge.get(k) for k in ("base_url", "model")} if judge else None,
        "embeddings": spec.embeddings,
        "engine_version": spec.engine_version,
    }


def plan_cases(spec: RunSpec, suite: Suite, *, strategies: Mapping[str, Strategy] | None = None
               ) -> list[CasePlan]:
    """Every case of the run in a deterministic order: endpoint, then question, then strategy. A case's
    id covers its full identity (``case_identity``), so a changed model or question is a new case.
    ``strategies`` (by spec key, e.g. an engine's) saves building them again."""
    built = [(s, strategies[s.key] if strategies is not None and s.key in strategies
              else build_strategy(s, index=i)) for i, s in enumerate(spec.strategies)]
    doc_hashes: dict[str, str] = {}

    def doc_hash(d: Any) -> str:
        if d.id not in doc_hashes:
            doc_hashes[d.id] = stable_hash(d.model_dump(mode="json"))
        return doc_hashes[d.id]

    contexts: dict[tuple[str, ...] | None, str] = {}
    question_hashes = {}
    for q in suite.questions:
        key = tuple(q.doc_ids) if q.doc_ids is not None else None
        if key not in contexts:
            contexts[key] = stable_hash([doc_hash(d) for d in suite.context_documents(q)])
        question_hashes[q.id] = (stable_hash(q.model_dump(mode="json")), contexts[key])
    plans: list[CasePlan] = []
    for ep in spec.endpoints:
        name = ep["name"]
        for q in suite.questions:
            qhash, chash = question_hashes[q.id]
            for spec_s, strat in built:
                prefix = strat.prefix_key(q, suite)
                group = stable_hash([name, spec_s.key, prefix])[:16] if prefix else None
                identity = case_identity(spec, ep, spec_s, qhash, chash)
                plans.append(CasePlan(case_id=case_id_for(q.id, name, spec_s.key, stable_hash(identity)),
                                      question_id=q.id, endpoint=name, strategy=spec_s, prefix_group=group,
                                      identity=identity))
    return plans


def tokenizer_for(endpoint: Endpoint, *, transport: httpx.BaseTransport | None = None) -> Tokenizer:
    """The server's tokenizer when the endpoint is set to ``server``, else one shipped in a package."""
    if endpoint.tokenizer == "server":
        return ServerTokenizer(endpoint.base_url, endpoint.model, api_key=endpoint.request_key(),
                               transport=transport)
    return local_tokenizer(endpoint.tokenizer)


def strategy_uses_embeddings(strategy: Strategy) -> bool:
    return uses_embeddings(getattr(strategy.params, "retriever", None))


class Engine:
    """Executes cases of one run. Holds one HTTP client per endpoint and the shared caches.

    Dense and hybrid retrieval embed with ``retrieval_env`` when given, else with ``embedder``, else
    with an embedder made from ``embeddings`` (see :func:`evals.embeddings.make_embedder`; made only
    when a strategy needs one). Judge scorers (``llm_judge[:rubric]``) are graded on ``judge``.
    """

    def __init__(self, *, suite: Suite, endpoints: dict[str, Endpoint], spec: RunSpec,
                 cache: ResponseCache | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 index_cache: IndexCache | None = None,
                 retrieval_env: RetrievalEnv | None = None, embedder: Embedder | None = None,
                 embeddings: EmbeddingSettings | None = None, judge: Endpoint | None = None,
                 secrets: Mapping[str, str] | None = None) -> None:
        missing = [e["name"] for e in spec.endpoints if e["name"] not in endpoints]
        if missing:
            raise UserInputError(f"the run names endpoints that were not given: {', '.join(missing)}")
        self.suite = suite
        self.spec = spec
        self.endpoints = endpoints
        self.cache = cache
        self.indexes = index_cache or DEFAULT_INDEX_CACHE
        self.questions = {q.id: q for q in suite.questions}
        self.preset = preset_of(suite.metadata, spec.preset)
        self.strategies: dict[str, Strategy] = {s.key: build_strategy(s, index=i)
                                                for i, s in enumerate(spec.strategies)}
        self.secrets: Mapping[str, str] = dict(secrets or {})
        missing_secrets = sorted({n for st in self.strategies.values() for n in st.required_secrets()
                                  if not self.secrets.get(n)})
        if missing_secrets:
            raise UserInputError(f"the run's strategies need the token(s) {', '.join(missing_secrets)}: set "
                                 "these environment variables", field="token_env")
        self._own_embedder: Embedder | None = None
        if retrieval_env is None and embedder is None and any(
                strategy_uses_embeddings(st) for st in self.strategies.values()):
            embedder = self._own_embedder = make_embedder(embeddings, list(endpoints.values()), transport=transport)
        if retrieval_env is None:
            retrieval_env = RetrievalEnv.from_embedder(embedder) if embedder is not None else RetrievalEnv()
        self.retrieval_env = retrieval_env
        self.scorers: dict[str, Scorer] = {n: get_scorer(n) for n in spec.scorers}
        self.judge_scorers = [s for s in self.scorers.values() if s.needs_model]
        if self.judge_scorers and judge is None:
            raise UserInputError(f"the scorers {', '.join(s.name for s in self.judge_scorers)} need a judge "
                                 "endpoint; give one ('judge' in the run file)", field="judge")
        self.judge = Judge(judge, transport=transport, cache=cache) if judge is not None and self.judge_scorers else None
        self._judge_slots = asyncio.Semaphore(judge.concurrency if judge is not None else 1)
        self.clients = {name: ModelClient(ep, transport=transport) for name, ep in endpoints.items()}
        self.tokenizers = {name: tokenizer_for(ep) for name, ep in endpoints.items()}
        self.chunk_tokenizer = local_tokenizer("cl100k")
        self._counts: dict[str, dict[str, int]] = {name: {} for name in endpoints}
        # long-context size per endpoint × document list: counted once, shared by the cases in flight
        self._context_tokens: dict[tuple[str, tuple[str, ...]], asyncio.Future[int]] = {}

    async def aclose(self) -> None:
        for c in self.clients.values():
            await c.aclose()
        for st in self.strategies.values():
            await st.aclose()
        if self.judge is not None:
            await self.judge.aclose()
        if self._own_embedder is not None:
            await self._own_embedder.aclose()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def execute(self, plan: CasePlan, *, on_first_token: Callable[[], None] | None = None) -> CaseResult:
        """Run and score one case. Faults become outcomes; nothing but cancellation escapes."""
        q = self.questions[plan.question_id]
        strategy = self.strategies[plan.strategy.key]
        llm = LLM(self.clients[plan.endpoint], self.cache, on_first_token)
        ctx = CaseContext(question=q, documents=self.suite.context_documents(q), suite=self.suite, llm=llm,
                          tokenizer=self.tokenizers[plan.endpoint], chunk_tokenizer=self.chunk_tokenizer,
                          indexes=self.indexes, retrieval_env=self.retrieval_env,
                          system_prompt=self.spec.system_prompt, count_cache=self._counts[plan.endpoint],
                          preset=self.preset, secrets=self.secrets)
        try:
            out = await strategy.answer(ctx)
        except ContextOverflowError as e:
            out = StrategyOutput(outcome=Outcome.over_window, error_class=e.error_class, error_message=str(e))
        except AnswerTooLongError as e:  # the part that arrived is kept, cut at the limit and marked
            out = StrategyOutput(outcome=Outcome.error, error_class=e.error_class, error_message=str(e),
                                 answer=e.partial, reasoning=e.partial_reasoning,
                                 metadata={"answer_truncated": {"kept_chars": len(e.partial),
                                                                "kept_reasoning_chars": len(e.partial_reasoning),
                                                                "limit_chars": e.limit}})
        except EndpointError as e:
            out = StrategyOutput(outcome=Outcome.error, error_class=e.error_class, error_message=str(e))
        except CtxevalError as e:
            out = StrategyOutput(outcome=Outcome.error, error_class="config_error", error_message=str(e))
        except Exception as e:  # a run never dies because of one case
            out = StrategyOutput(outcome=Outcome.error, error_class=f"internal:{type(e).__name__}",
                                 error_message=str(e)[:2000])
        if out.retrieved and "retrieval" not in out.metadata:
            out.metadata["retrieval"] = True
        if strategy_uses_embeddings(strategy) and self.retrieval_env.embed_key:
            out.metadata["embedder"] = self.retrieval_env.embed_key
        result = self._result(plan, q.metadata, out, llm)
        if plan.identity:
            result.metadata["identity"] = plan.identity
        if result.context_tokens is None:
            try:
                result.context_tokens = await self._long_context_tokens(plan.endpoint, ctx)
            except CtxevalError:
                result.context_tokens = None
        self._score(result)
        if self.judge is not None and result.answered:
            await self._judge(result)
        self._attribute(result)
        self._scrub(result)
        return result

    def _scrub(self, result: CaseResult) -> None:
        """No key (of any endpoint of this engine) nor anything shaped like one stays in error text."""
        secrets = [ep.api_key.get_secret_value() for ep in self._all_endpoints() if ep.api_key is not None]
        secrets += list(self.secrets.values())  # pipeline tokens of http strategies
        if result.error_message:
            result.error_message = scrub(result.error_message, secrets)
        judged = result.metadata.get("judged_outcome")
        if isinstance(judged, dict) and judged.get("error_message"):
            judged["error_message"] = scrub(str(judged["error_message"]), secrets)
        for verdict in (result.metadata.get("judge") or {}).values():
            if isinstance(verdict, dict) and isinstance(verdict.get("error"), str):
                verdict["error"] = scrub(verdict["error"], secrets)

    def _all_endpoints(self) -> list[Endpoint]:
        found = list(self.endpoints.values())
        if self.judge is not None:
            found.append(self.judge.endpoint)
        return found

    async def _long_context_tokens(self, endpoint: str, ctx: CaseContext) -> int:
        """Tokens of the question's whole context, rendered and counted once per document list (a
        1M-token corpus shared by every question is not rendered again for each of them)."""
        key = (endpoint, tuple(d.id for d in ctx.documents))
        future = self._context_tokens.get(key)
        if future is None:
            future = self._context_tokens[key] = asyncio.ensure_future(self._count_context(ctx))
        return await asyncio.shield(future)

    async def _count_context(self, ctx: CaseContext) -> int:
        """Counted once; with an index cache on disk, once across runs and processes too."""
        text = prompts.render_documents(ctx.documents)
        stored = self.indexes.stored_count(text, ctx.tokenizer)
        if stored is not None:
            return stored
        count = await ctx.count(text)
        self.indexes.store_count(text, ctx.tokenizer, count)
        return count

    def _result(self, plan: CasePlan, qmeta: dict[str, Any], out: StrategyOutput, llm: LLM) -> CaseResult:
        outcome = out.outcome
        if outcome is None:
            if not out.answer.strip():
                outcome = Outcome.no_answer
            elif prompts.is_unanswerable(out.answer):
                outcome = Outcome.declined
            else:
                outcome = Outcome.ok
        usage = Usage()
        for c in llm.calls:
            usage = usage + c.usage
        est = out.metadata.pop("estimated_prompt_tokens", None)
        if est is not None:
            usage = usage.model_copy(update={"estimated_prompt_tokens": int(est)})
        costs = [c.cost_usd for c in llm.calls if c.cost_usd is not None]
        latencies = [c.latency_s for c in llm.calls if c.latency_s is not None]
        # heatmap rows line up on the depth asked for; the measured one stays in the metadata
        depth = qmeta.get("depth_target", qmeta.get("depth"))
        if qmeta.get("depth") is not None:
            out.metadata.setdefault("depth_measured", qmeta["depth"])
        ctx_tokens = qmeta.get("context_tokens")
        return CaseResult(
            case_id=plan.case_id, question_id=plan.question_id, endpoint=plan.endpoint,
            strategy=plan.strategy.key, strategy_name=plan.strategy.name, prompt=out.prompt,
            answer=out.answer, reasoning=out.reasoning, usage=usage, calls=llm.calls,
            ttft_s=llm.calls[0].ttft_s if llm.calls else None,
            latency_s=sum(latencies) if latencies else None,
            cost_usd=sum(costs) if costs else None, retrieved=out.retrieved, route=out.route,
            outcome=outcome, error_class=out.error_class, error_message=out.error_message,
            truncation=out.truncation, context_tokens=int(ctx_tokens) if ctx_tokens is not None else None,
            depth=float(depth) if depth is not None else None, steps=out.steps, metadata=out.metadata,
            from_cache=bool(llm.calls) and all(c.from_cache for c in llm.calls),
        )

    def _score(self, result: CaseResult) -> None:
        """Scores every case. A case without an answer (over_window, error, no_answer) gets 0 from every
        answer scorer and judge scorer by definition, never a score of the empty string; retrieval
        scorers still score what was retrieved (``evals.scorers.score_of``)."""
        question = self.questions[result.question_id]
        task = self.preset.prompt_for(question)
        scored = result
        if task is not None and task.first_line:  # LongBench scores the first line of these tasks' answers
            scored = result.model_copy(update={"answer": first_line(result.answer)})
        result.scores = {s.name: score_of(s, scored, question) for s in self.scorers.values() if not s.needs_model}
        if not result.answered:
            for judge_scorer in self.judge_scorers:
                result.scores[judge_scorer.name] = 0.0

    async def _judge(self, result: CaseResult) -> None:
        """Grade the judge scorers. Judge calls join ``calls`` (role ``judge``) but not the case's
        usage or cost: those go to ``metadata["judge_usage"]`` and ``metadata["judge_cost_usd"]``."""
        assert self.judge is not None
        question = self.questions[result.question_id]
        verdicts: dict[str, Any] = {}
        usage, cost, failure = Usage(), None, None
        for scorer in self.judge_scorers:
            name = scorer.name
            try:
                async with self._judge_slots:
                    verdict, calls = await self.judge.grade(scorer, question, result)
            except EndpointError as e:
                rubric = str(getattr(scorer.params, "rubric", name))
                verdict, calls = Verdict(rubric=rubric, score=None, error=str(e)), []
                failure = failure or (f"judge_{e.error_class}", f"judge call failed: {e}")
            if verdict.error and failure is None:
                failure = ("judge_unparseable", f"{name}: {verdict.error}")
            result.calls.extend(calls)
            for c in calls:
                usage = usage + c.usage
                if c.cost_usd is not None:
                    cost = (cost or 0.0) + c.cost_usd
            result.scores[name] = verdict.score
            verdicts[name] = {**verdict.as_dict(), "model": self.judge.endpoint.model}
        result.metadata["judge"] = verdicts
        result.metadata["judge_usage"] = usage.model_dump()
        result.metadata["judge_cost_usd"] = cost
        if failure is not None:
            result.metadata["judged_outcome"] = {"outcome": result.outcome.value, "error_class": result.error_class,
                                                 "error_message": result.error_message}
            result.outcome = Outcome.judge_error
            result.error_class, result.error_message = failure

    def _attribute(self, result: CaseResult) -> None:
        """``metadata["attribution"]`` of a wrong retrieval answer: not_retrieved or retrieved_wrong."""
        question = self.questions[result.question_id]
        primary = primary_answer_scorer(self.spec.scorers)
        if result.outcome == Outcome.error or primary is None:
            return
        label = attribute(result.scores.get(primary), retrieval_recall(result, question))
        if label is not None:
            result.metadata["attribution"] = label


T = TypeVar("T")


@dataclass
class PrefixWaves(Generic[T]):
    """Cases in prefix waves: ``first`` starts at once (every case without a prefix group, and the first
    case of each group, its leader); ``followers[group]`` start when that group's leader has warmed the
    server's prefix cache (first token or finished). Plan order is kept within each list."""

    first: list[T]
    leaders: dict[str, T]
    followers: dict[str, list[T]]


def prefix_waves(items: Iterable[T], group: Callable[[T], str | None]) -> PrefixWaves[T]:
    """The one case ordering of both runners (in memory here, durable in the service)."""
    waves: PrefixWaves[T] = PrefixWaves([], {}, {})
    for item in items:
        g = group(item)
        if g is None:
            waves.first.append(item)
        elif g not in waves.leaders:
            waves.leaders[g] = item
            waves.first.append(item)
        else:
            waves.followers.setdefault(g, []).append(item)
    return waves


async def run_all(engine: Engine, plans: list[CasePlan], *,
                  skip: Iterable[str] = ()) -> AsyncIterator[CaseResult]:
    """Execute ``plans`` and yield each result as it finishes.

    Concurrency is bounded per endpoint by its ``concurrency``. Cases sharing a long prefix
    (``prefix_group``) wait until the first case of the group has received its first token (or
    finished), so the server's prefix cache is warm when the rest arrive.
    """
    done = set(skip)
    todo = [p for p in plans if p.case_id not in done]
    sems = {name: asyncio.Semaphore(ep.concurrency) for name, ep in engine.endpoints.items()}
    waves = prefix_waves(todo, lambda p: p.prefix_group)
    warm: dict[str, asyncio.Event] = {g: asyncio.Event() for g in waves.leaders}
    leaders: set[str] = {p.case_id for p in waves.leaders.values()}

    async def one(plan: CasePlan) -> CaseResult:
        event = warm.get(plan.prefix_group) if plan.prefix_group else None
        if event is not None and plan.case_id not in leaders:
            await event.wait()
        async with sems[plan.endpoint]:
            if event is not None and plan.case_id in leaders:
                try:
                    return await engine.execute(plan, on_first_token=event.set)
                finally:
                    event.set()
            return await engine.execute(plan)

    tasks = [asyncio.create_task(one(p)) for p in todo]
    try:
        for fut in asyncio.as_completed(tasks):
            yield await fut
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
