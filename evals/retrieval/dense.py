"""Dense retrieval: cosine similarity by brute force over unit vectors (numpy).

Chunks are embedded once per corpus and embedding model (``RetrievalEnv.embed_corpus``); each query is
embedded when asked (``RetrievalEnv.embed``, memoised by the embedder). For up to ~100k chunks a
matrix-vector product is fast enough that no approximate index is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evals import registry
from evals.errors import PermanentError
from evals.retrieval.base import RetrievalEnv, Retriever
from evals.retrieval.chunking import Chunk


@registry.retriever(order=1)
class DenseRetriever(Retriever):
    name = "dense"
    uses_embeddings = True

    def __init__(self, params: object) -> None:
        super().__init__(params)  # type: ignore[arg-type]
        self.vectors: np.ndarray | None = None
        self._n = 0
        self._embed_key = ""

    async def build(self, chunks: list[Chunk], env: RetrievalEnv) -> None:
        self._n = len(chunks)
        self._embed_key = env.embed_key
        if not chunks:
            self.vectors = None
            return
        v = np.asarray(await env.corpus_vectors([c.indexed_text for c in chunks]), dtype=np.float32)
        if v.ndim != 2 or v.shape[0] != len(chunks):
            raise PermanentError(f"embeddings: {len(chunks)} chunks but got vectors of shape {v.shape}")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        self.vectors = v / np.where(norms == 0, 1.0, norms)

    def save(self, directory: Path) -> bool:
        if not self._embed_key:  # vectors of an unnamed embedder could be taken for another's
            return False
        if self.vectors is not None:
            np.save(directory / "dense.npy", self.vectors, allow_pickle=False)
        return True

    def load(self, directory: Path, n_chunks: int) -> bool:
        self._n = n_chunks
        if n_chunks == 0:
            self.vectors = None
            return True
        path = directory / "dense.npy"
        if not path.is_file():
            return False
        vectors = np.load(path, allow_pickle=False)
        if vectors.ndim != 2 or vectors.shape[0] != n_chunks:
            return False
        self.vectors = vectors
        return True

    async def scores(self, query: str, env: RetrievalEnv, mask: np.ndarray | None = None) -> np.ndarray:
        if self.vectors is None:
            return np.zeros(self._n)
        q = np.asarray(await env.query_vector(query), dtype=np.float32)
        if q.shape != (self.vectors.shape[1],):
            raise PermanentError(f"embeddings: the query vector has shape {q.shape}, the corpus "
                                 f"{self.vectors.shape[1]} dimensions")
        norm = float(np.linalg.norm(q))
        scores: np.ndarray = self.vectors @ (q / norm if norm else q)
        return scores
