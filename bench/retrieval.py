"""4. Retrieval preparation.

A corpus of about 1M tokens (essay-like prose with planted facts) is chunked and indexed the way a
``rag`` case does it (``IndexCache.get``: sentence chunking at 256 tokens with 32 of overlap, counted with
cl100k, then BM25 via ``bm25s``), and compared with calling ``bm25s`` directly on the same chunk texts.
The split rows name where the time goes: chunking against one tokenizer pass over the corpus (the
least a token-counting chunker must do), and ctxeval's BM25 build against ``bm25s``'s. Query latency:
``Index.search`` (top 5) against ``bm25s``'s ``retrieve`` (top 5), per question.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import bm25s
import numpy as np

from bench.common import Figure, Row, Sizes, alternate
from bench.data import corpus_suite
from evals.retrieval.base import IndexCache, RetrievalEnv, build_retriever
from evals.retrieval.chunking import Chunk, ChunkingParams, chunk_documents
from evals.stats import percentile
from evals.tokens import local_tokenizer

NAME = "retrieval"
K = 5


def bm25s_index(texts: list[str]) -> bm25s.BM25:
    model = bm25s.BM25()
    model.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    return model


def run(sizes: Sizes, log: Callable[[str], None] = print) -> list[Row]:
    suite = corpus_suite(sizes.corpus_tokens, sizes.retrieval_queries, seed=7)
    docs = suite.documents
    tok = local_tokenizer("cl100k")
    params = ChunkingParams()
    env = RetrievalEnv()
    enc = getattr(tok, "_enc", None)
    corpus_tokens = sum(len(x) for x in enc.encode_ordinary_batch([d.text for d in docs])) if enc else None
    chunks: list[Chunk] = chunk_documents(docs, params, tok)
    texts = [c.indexed_text for c in chunks]
    log(f"  {len(docs)} documents, {corpus_tokens} tokens, {len(chunks)} chunks, {len(suite.questions)} queries")
    state: dict[str, Any] = {}

    def ctxeval_build(rep: int) -> float:
        start = time.perf_counter()
        index = asyncio.run(IndexCache().get(docs, params, build_retriever("bm25"), tok, env))
        seconds = time.perf_counter() - start
        state["index"] = index
        return seconds

    def bm25s_build(rep: int) -> float:
        start = time.perf_counter()
        state["bm25s"] = bm25s_index(texts)
        return time.perf_counter() - start

    def ctxeval_chunk(rep: int) -> float:
        start = time.perf_counter()
        chunk_documents(docs, params, tok)
        return time.perf_counter() - start

    def tokenizer_pass(rep: int) -> float:
        start = time.perf_counter()
        if enc is not None:
            enc.encode_ordinary_batch([d.text for d in docs])
        else:  # pragma: no cover - cl100k is tiktoken
            for d in docs:
                tok.count(d.text)
        return time.perf_counter() - start

    def ctxeval_bm25(rep: int) -> float:
        retriever = build_retriever("bm25")
        start = time.perf_counter()
        asyncio.run(retriever.build(chunks, env))
        return time.perf_counter() - start

    build = alternate({"ctxeval": ctxeval_build, "bm25s": bm25s_build}, sizes.reps, warmup=False, log=log)
    split = alternate({"chunk": ctxeval_chunk, "tokenize": tokenizer_pass, "ctxeval_bm25": ctxeval_bm25,
                       "bm25s": bm25s_build}, sizes.reps, warmup=False, log=log)

    index, model = state["index"], state["bm25s"]
    questions = [q.question for q in suite.questions]

    def ctxeval_query(rep: int) -> float:
        async def all_queries() -> list[float]:
            out = []
            for q in questions:
                start = time.perf_counter()
                await index.search(q, K, env)
                out.append(time.perf_counter() - start)
            return out
        times = asyncio.run(all_queries())
        state.setdefault("ctxeval_query_times", []).extend(times)
        return 1000 * float(np.median(times))

    def bm25s_query(rep: int) -> float:
        times = []
        for q in questions:
            start = time.perf_counter()
            model.retrieve(bm25s.tokenize([q], stopwords="en", show_progress=False), k=K, show_progress=False)
            times.append(time.perf_counter() - start)
        state.setdefault("bm25s_query_times", []).extend(times)
        return 1000 * float(np.median(times))

    query = alternate({"ctxeval": ctxeval_query, "bm25s": bm25s_query}, sizes.reps, log=log)
    ctx_p95 = 1000 * percentile(state["ctxeval_query_times"], 95)
    ref_p95 = 1000 * percentile(state["bm25s_query_times"], 95)
    size = f"{corpus_tokens:,} tokens (cl100k) in {len(docs)} documents → {len(chunks):,} chunks"
    reps = f"median of {sizes.reps} alternating reps"
    extra = {"corpus_tokens": corpus_tokens, "documents": len(docs), "chunks": len(chunks),
             "build": build, "split": split, "query_ms": query}
    return [
        Row(bench=NAME, what="Retrieval index build: chunk + BM25 (ctxeval) vs bm25s on the same chunks",
            conditions=f"{size}; sentence chunks of 256 tokens, overlap 32; {reps}",
            ctxeval=Figure("IndexCache.get (chunk, count, index)", "s", build["ctxeval"], higher_is_better=False),
            reference=Figure("bm25s tokenize + index, same chunk texts", "s", build["bm25s"], higher_is_better=False),
            extra=extra),
        Row(bench=NAME, what="Chunking alone vs one tokenizer pass over the corpus",
            conditions=f"{size}; {reps}",
            ctxeval=Figure("chunk_documents (sentence)", "s", split["chunk"], higher_is_better=False),
            reference=Figure("tiktoken encode_ordinary_batch, whole corpus", "s", split["tokenize"],
                             higher_is_better=False)),
        Row(bench=NAME, what="BM25 indexing alone", conditions=f"{len(chunks):,} chunks; {reps}",
            ctxeval=Figure("BM25Retriever.build", "s", split["ctxeval_bm25"], higher_is_better=False),
            reference=Figure("bm25s tokenize + index", "s", split["bm25s"], higher_is_better=False)),
        Row(bench=NAME, what="Query latency per question (top 5)",
            conditions=f"{len(questions)} questions over {len(chunks):,} chunks; median per question, {reps}",
            ctxeval=Figure("Index.search", "ms", query["ctxeval"], higher_is_better=False,
                           detail=f"p95 {ctx_p95:.2f} ms"),
            reference=Figure("bm25s tokenize + retrieve", "ms", query["bm25s"], higher_is_better=False,
                             detail=f"p95 {ref_p95:.2f} ms")),
    ]
