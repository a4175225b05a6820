"""``word_overlap``: a retriever scoring chunks by the share of the query's words they contain.

Usable by every retrieval strategy: ``{"name": "rag", "params": {"retriever": "word_overlap"}}``.
"""

from __future__ import annotations

import numpy as np

from ctxeval_example.strategy import words
from evals import registry
from evals.retrieval.base import RetrievalEnv, Retriever
from evals.retrieval.chunking import Chunk


@registry.retriever()
class WordOverlap(Retriever):
    """Share of the query's words found in the chunk."""

    name = "word_overlap"

    def __init__(self, params):  # type: ignore[no-untyped-def]
        super().__init__(params)
        self._chunks: list[set[str]] = []

    async def build(self, chunks: list[Chunk], env: RetrievalEnv) -> None:
        self._chunks = [words(c.indexed_text) for c in chunks]

    async def scores(self, query: str, env: RetrievalEnv, mask: np.ndarray | None = None) -> np.ndarray:
        q = words(query)
        return np.array([len(q & c) / len(q) if q else 0.0 for c in self._chunks])
