"""Hybrid retrieval: BM25 and dense rankings fused with weighted reciprocal rank fusion (RRF).

``score(c) = Σ_r w_r / (k_rrf + rank_r(c))`` over the retrievers r that rank chunk c, with 1-based
ranks among the candidate chunks (the question's own documents). BM25 ranks only chunks sharing at
least one term with the query (score > 0); dense ranks every chunk. Ties in a ranking are broken by
corpus order. Cormack et al. (2009) use ``k_rrf = 60``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evals import registry
from evals.retrieval.base import RetrievalEnv, Retriever
from evals.retrieval.bm25 import BM25Retriever
from evals.retrieval.chunking import Chunk
from evals.retrieval.dense import DenseRetriever


def ranks(scores: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of every chunk by score (descending, ties by position); 0 = not ranked
    (masked out, or a score of -inf or NaN)."""
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s) if mask is None else (np.isfinite(s) & mask)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((idx, -s[idx]))]
    out = np.zeros(len(s), dtype=np.int64)
    out[order] = np.arange(1, len(order) + 1)
    return out


def reciprocal_rank_fusion(score_lists: Sequence[np.ndarray], weights: Sequence[float], *, k_rrf: float = 60.0,
                           mask: np.ndarray | None = None) -> np.ndarray:
    """Weighted RRF of several score arrays over the same chunks (-inf/NaN = not retrieved by that one).
    Chunks no ranking retrieved get -inf."""
    if len(score_lists) != len(weights):
        raise ValueError("one weight per ranking is needed")
    n = len(score_lists[0]) if score_lists else 0
    fused = np.zeros(n, dtype=np.float64)
    seen = np.zeros(n, dtype=bool)
    for scores, w in zip(score_lists, weights, strict=True):
        r = ranks(scores, mask)
        hit = r > 0
        fused[hit] += w / (k_rrf + r[hit])
        seen |= hit
    return np.where(seen, fused, -np.inf)


@registry.retriever(order=2)
class HybridRetriever(Retriever):
    name = "hybrid"
    uses_embeddings = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        k_rrf: float = Field(default=60.0, ge=0)
        weight_bm25: float = Field(default=1.0, ge=0)
        weight_dense: float = Field(default=1.0, ge=0)
        k1: float = Field(default=1.5, gt=0)
        b: float = Field(default=0.75, ge=0, le=1)

    def __init__(self, params: BaseModel) -> None:
        super().__init__(params)
        p = self.params
        self.bm25 = BM25Retriever(BM25Retriever.Params(k1=p.k1, b=p.b))  # type: ignore[attr-defined]
        self.dense = DenseRetriever(Retriever.Params())

    async def build(self, chunks: list[Chunk], env: RetrievalEnv) -> None:
        await self.bm25.build(chunks, env)
        await self.dense.build(chunks, env)

    def save(self, directory: Path) -> bool:
        return self.dense.save(directory) and self.bm25.save(directory)

    def load(self, directory: Path, n_chunks: int) -> bool:
        return self.bm25.load(directory, n_chunks) and self.dense.load(directory, n_chunks)

    async def scores(self, query: str, env: RetrievalEnv, mask: np.ndarray | None = None) -> np.ndarray:
        p = self.params
        lexical = np.asarray(await self.bm25.scores(query, env), dtype=np.float64)
        lexical = np.where(lexical > 0, lexical, -np.inf)
        dense = np.asarray(await self.dense.scores(query, env), dtype=np.float64)
        return reciprocal_rank_fusion([lexical, dense], [p.weight_bm25, p.weight_dense],  # type: ignore[attr-defined]
                                      k_rrf=p.k_rrf, mask=mask)  # type: ignore[attr-defined]
