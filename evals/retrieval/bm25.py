"""Lexical retrieval with BM25 (``bm25s``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import bm25s
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evals import registry
from evals.retrieval.base import RetrievalEnv, Retriever
from evals.retrieval.chunking import Chunk


def _tokens(texts: list[str]) -> list[list[str]]:
    out = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
    return list(out)


@registry.retriever(order=0)
class BM25Retriever(Retriever):
    name = "bm25"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        k1: float = Field(default=1.5, gt=0)
        b: float = Field(default=0.75, ge=0, le=1)

    def __init__(self, params: BaseModel) -> None:
        super().__init__(params)
        self._bm25: bm25s.BM25 | None = None
        self._n = 0

    async def build(self, chunks: list[Chunk], env: RetrievalEnv) -> None:
        def _build() -> bm25s.BM25:
            p = self.params
            model = bm25s.BM25(k1=p.k1, b=p.b)  # type: ignore[attr-defined]
            model.index(_tokens([c.indexed_text for c in chunks]), show_progress=False)
            return model

        self._n = len(chunks)
        self._bm25 = await asyncio.to_thread(_build) if chunks else None

    def save(self, directory: Path) -> bool:
        if self._bm25 is not None:
            self._bm25.save(str(directory / "bm25"), show_progress=False)
        return True

    def load(self, directory: Path, n_chunks: int) -> bool:
        self._n = n_chunks
        if n_chunks == 0:
            self._bm25 = None
            return True
        if not (directory / "bm25").is_dir():
            return False
        self._bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False, verbosity=0)
        return True

    async def scores(self, query: str, env: RetrievalEnv, mask: np.ndarray | None = None) -> np.ndarray:
        if self._bm25 is None:
            return np.zeros(self._n)
        q = _tokens([query])[0]
        if not q:
            return np.zeros(self._n)
        return np.asarray(self._bm25.get_scores(q))
