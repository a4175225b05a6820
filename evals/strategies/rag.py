"""Retrieval strategies: ``rag`` (chunks → retriever → top-k or a token budget) and ``self_route``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from evals import presets, prompts, registry
from evals.domain import Document, Evidence, RetrievedChunk
from evals.errors import UserInputError
from evals.presets import CHAT_RESERVE, Rendered, TaskPrompt
from evals.retrieval.base import Retriever, RetrieverName, build_retriever
from evals.retrieval.chunking import Chunk, Chunking, ChunkingParams
from evals.strategies.base import CaseContext, EstimateContext, Strategy, StrategyOutput
from evals.strategies.context import LongContextParams, build_long_context, build_native, send_rendered


class RagParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retriever: RetrieverName = Field(default="bm25", description="how chunks are found")
    retriever_params: dict[str, Any] = Field(default_factory=dict)
    chunk_tokens: int = Field(default=256, ge=16, le=32768)
    overlap_tokens: int = Field(default=32, ge=0)
    title_prefix: bool = Field(default=False, description="index and show each chunk with its document's title")
    chunking: Chunking = Field(default="sentence", description="sentence | paragraph | tokens")
    k: int = Field(default=5, ge=1, le=1000)
    budget_tokens: int | None = Field(default=None, ge=1, description="fill chunks up to this many tokens instead of k")
    order: Literal["score", "position"] = Field(default="score",
                                                description="position keeps the documents' order (OP-RAG)")
    _retriever: Retriever | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> RagParams:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        try:
            self._retriever = build_retriever(self.retriever, self.retriever_params)
        except UserInputError as e:
            raise ValueError(e.detail) from e
        return self

    def built_retriever(self) -> Retriever:
        """The retriever, built once with these parameters (at validation) and shared by every case: the
        index cache keeps the built index per corpus."""
        if self._retriever is None:
            self._retriever = build_retriever(self.retriever, self.retriever_params)
        return self._retriever

    @property
    def chunking_params(self) -> ChunkingParams:
        return ChunkingParams(chunk_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens,
                              title_prefix=self.title_prefix, chunking=self.chunking)


def retrieval_estimate(est: EstimateContext, params: RagParams | Any) -> tuple[int, bool]:
    """The long-context frame plus ``k`` chunks of ``chunk_tokens`` (or ``budget_tokens``), never more
    than the documents hold."""
    context = est.context_tokens()
    budget = getattr(params, "budget_tokens", None)
    sent = min(budget, context) if budget else min(params.k * params.chunk_tokens, context)
    return est.frame_tokens() + sent, True


def overlaps_evidence(chunk: Chunk, evidence: list[Evidence]) -> bool:
    for ev in evidence:
        if ev.doc_id != chunk.doc_id:
            continue
        if ev.start is None or ev.end is None or (chunk.start < ev.end and ev.start < chunk.end):
            return True
    return False


async def retrieve(ctx: CaseContext, params: RagParams, query: str | None = None
                   ) -> tuple[list[RetrievedChunk], list[Chunk]]:
    """Chunks for the question (or ``query``): best first by score, then cut by k or the token
    budget, then ordered."""
    retriever = params.built_retriever()
    corpus: list[Document] = ctx.suite.documents
    index = await ctx.indexes.get(corpus, params.chunking_params, retriever, ctx.chunk_tokenizer, ctx.retrieval_env)
    doc_ids = [d.id for d in ctx.documents] if ctx.question.doc_ids is not None else None
    want = params.k if params.budget_tokens is None else len(index.chunks)
    hits = await index.search(query or ctx.question.question, want, ctx.retrieval_env, doc_ids=doc_ids)
    if params.budget_tokens is not None:
        kept, used = [], 0
        for chunk, score in hits:
            if used + chunk.tokens > params.budget_tokens:
                break
            kept.append((chunk, score))
            used += chunk.tokens
        hits = kept
    retrieved = [RetrievedChunk(chunk_id=c.chunk_id, doc_id=c.doc_id, start=c.start, end=c.end, score=s,
                                rank=r, text=c.text, gold=overlaps_evidence(c, ctx.question.evidence))
                 for r, (c, s) in enumerate(hits)]
    chunks = [c for c, _ in hits]
    if params.order == "position":
        position = {d.id: i for i, d in enumerate(ctx.documents)}
        pairs = sorted(zip(chunks, retrieved, strict=True),
                       key=lambda p: (position.get(p[0].doc_id, p[0].doc_index), p[0].start))
        chunks = [p[0] for p in pairs]
        retrieved = [p[1] for p in pairs]
    return retrieved, chunks


def render_chunks(chunks: list[Chunk]) -> str:
    """Each chunk under a header with its id (and its document's title when ``title_prefix`` is on)."""
    return "\n\n".join(f"[Chunk {c.chunk_id}]{' ' + c.title if c.title else ''}\n{c.text}" for c in chunks)


async def rag_native(ctx: CaseContext, params: RagParams, task: TaskPrompt, *, allow_unanswerable: bool
                     ) -> tuple[Rendered, list[RetrievedChunk], int]:
    """A preset's prompt with the retrieved chunks in place of the documents (the benchmark's retrieval
    template when it has one); Self-Route's instruction closes the user turn."""
    retrieved, chunks = await retrieve(ctx, params)
    return await native_from_chunks(ctx, task, chunks, retrieved, allow_unanswerable=allow_unanswerable)


async def native_from_chunks(ctx: CaseContext, task: TaskPrompt, chunks: list[Chunk],
                             retrieved: list[RetrievedChunk], *, allow_unanswerable: bool
                             ) -> tuple[Rendered, list[RetrievedChunk], int]:
    block, template = presets.render_chunks(task, [(c.title, c.text) for c in chunks])
    rendered = presets.render(task, ctx.question, block, template=template)
    if allow_unanswerable:
        rendered.user = f"{rendered.user}\n{prompts.ROUTE_INSTRUCTION}"
    return rendered, retrieved, await ctx.count(rendered.text()) + CHAT_RESERVE


async def rag_messages(ctx: CaseContext, params: RagParams, *, allow_unanswerable: bool
                       ) -> tuple[list[dict[str, Any]], list[RetrievedChunk], int]:
    retrieved, chunks = await retrieve(ctx, params)
    return await messages_from_chunks(ctx, chunks, retrieved, allow_unanswerable=allow_unanswerable)


async def messages_from_chunks(ctx: CaseContext, chunks: list[Chunk], retrieved: list[RetrievedChunk], *,
                               allow_unanswerable: bool) -> tuple[list[dict[str, Any]], list[RetrievedChunk], int]:
    system = ctx.system_prompt or prompts.SYSTEM
    user = prompts.passages_user(render_chunks(chunks), ctx.question.question,
                                 allow_unanswerable=allow_unanswerable)
    estimate = sum(c.tokens for c in chunks) + await ctx.count(system + prompts.passages_user(
        "", ctx.question.question, allow_unanswerable=allow_unanswerable))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], retrieved, estimate


async def answer_from_chunks(ctx: CaseContext, chunks: list[Chunk], retrieved: list[RetrievedChunk]
                             ) -> StrategyOutput:
    """``rag``'s answer from chunks found elsewhere (an HTTP retriever): the same prompt (the preset's
    when the suite has one), one model call."""
    task = ctx.preset.prompt_for(ctx.question)
    if task is not None:
        rendered, retrieved, estimate = await native_from_chunks(ctx, task, chunks, retrieved,
                                                                 allow_unanswerable=False)
        return await send_rendered(ctx, rendered, StrategyOutput(
            retrieved=retrieved, metadata={"retrieval": True, "estimated_prompt_tokens": estimate}))
    messages, retrieved, estimate = await messages_from_chunks(ctx, chunks, retrieved, allow_unanswerable=False)
    resp = await ctx.llm.chat(messages)
    return StrategyOutput(answer=resp.text, reasoning=resp.reasoning, prompt=messages, retrieved=retrieved,
                          metadata={"retrieval": True, "estimated_prompt_tokens": estimate})


@registry.strategy(order=2, preselected=True)
class Rag(Strategy):
    """Retrieve chunks of the question's documents and answer from them."""

    name = "rag"
    retrieval = True
    Params = RagParams

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        return retrieval_estimate(est, self.params)

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        task = ctx.preset.prompt_for(ctx.question)
        if task is not None:
            rendered, retrieved, estimate = await rag_native(ctx, self.params, task,  # type: ignore[arg-type]
                                                             allow_unanswerable=False)
            return await send_rendered(ctx, rendered, StrategyOutput(
                retrieved=retrieved, metadata={"retrieval": True, "estimated_prompt_tokens": estimate}))
        messages, retrieved, estimate = await rag_messages(ctx, self.params, allow_unanswerable=False)  # type: ignore[arg-type]
        resp = await ctx.llm.chat(messages)
        return StrategyOutput(answer=resp.text, reasoning=resp.reasoning, prompt=messages, retrieved=retrieved,
                              metadata={"retrieval": True, "estimated_prompt_tokens": estimate})


class SelfRouteParams(RagParams):
    truncation: Literal["error", "head", "tail", "middle"] = "error"
    margin_tokens: int = Field(default=64, ge=0)


@registry.strategy(order=3)
class SelfRoute(Strategy):
    """RAG first with the option to decline; declined questions go to long context (Li et al. 2024)."""

    name = "self_route"
    retrieval = True
    Params = SelfRouteParams
    estimate_note = "self_route counted as its retrieval pass; questions it routes to long context cost more"

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        """Its retrieval pass; questions it routes to long context cost more."""
        return retrieval_estimate(est, self.params)

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        p: SelfRouteParams = self.params  # type: ignore[assignment]
        task = ctx.preset.prompt_for(ctx.question)
        lc_params = LongContextParams(truncation=p.truncation, margin_tokens=p.margin_tokens)
        if task is not None:
            rendered, retrieved, estimate = await rag_native(ctx, p, task, allow_unanswerable=True)
            first = await send_rendered(ctx, rendered, StrategyOutput(retrieved=retrieved, route="rag"),
                                        role="route")
            routed: dict[str, Any] = {"retrieval": True, "estimated_prompt_tokens": estimate,
                                      "rag_answer": first.answer, **first.metadata}
            if not prompts.is_unanswerable(first.answer):
                first.metadata = routed
                return first
            native = await build_native(ctx, lc_params, task)
            if isinstance(native, StrategyOutput):
                native.retrieved, native.route = retrieved, "long_context"
                native.metadata = {**routed, **native.metadata}
                return native
            lc_rendered, total, truncation = native
            routed["estimated_prompt_tokens"] = estimate + total
            return await send_rendered(ctx, lc_rendered, StrategyOutput(
                retrieved=retrieved, route="long_context", truncation=truncation, metadata=routed))
        messages, retrieved, estimate = await rag_messages(ctx, p, allow_unanswerable=True)
        resp = await ctx.llm.chat(messages, role="route")
        meta: dict[str, Any] = {"retrieval": True, "estimated_prompt_tokens": estimate,
                                "rag_answer": resp.text}
        if not prompts.is_unanswerable(resp.text):
            return StrategyOutput(answer=resp.text, reasoning=resp.reasoning, prompt=messages,
                                  retrieved=retrieved, route="rag", metadata=meta)
        built = await build_long_context(ctx, lc_params)
        if isinstance(built, StrategyOutput):
            built.retrieved, built.route = retrieved, "long_context"
            built.metadata = {**meta, **built.metadata}
            return built
        resp2 = await ctx.llm.chat(built.messages)
        meta["estimated_prompt_tokens"] = estimate + built.estimated_tokens
        return StrategyOutput(answer=resp2.text, reasoning=resp2.reasoning, prompt=built.messages,
                              retrieved=retrieved, route="long_context", truncation=built.truncation,
                              metadata=meta)


class SelfRoutePaperParams(SelfRouteParams):
    """Li et al. (2024)'s retrieval settings: a dense retriever, 300-word chunks, the top 5 by similarity."""

    retriever: str = "dense"
    chunking: Chunking = Field(default="words", description="sentence | paragraph | tokens | words")
    chunk_tokens: int = Field(default=300, ge=16, le=32768, description="300 words per chunk")
    overlap_tokens: int = Field(default=0, ge=0)
    k: int = Field(default=5, ge=1, le=1000)


@registry.strategy(order=4)
class SelfRoutePaper(SelfRoute):
    """``self_route`` with the paper's settings (``self_route`` keeps ctxeval's BM25 defaults)."""

    name = "self_route_paper"
    Params = SelfRoutePaperParams
