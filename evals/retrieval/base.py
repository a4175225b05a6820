"""Retriever interface, registry, and the index cache (one index per corpus × chunking × retriever).

An index covers a whole suite corpus; a question whose long context is a subset of the corpus
(``Question.doc_ids``) searches with a mask so only its own documents can be returned.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from evals import registry
from evals.domain import Document, stable_hash
from evals.errors import UserInputError
from evals.retrieval.chunking import Chunk, ChunkingParams, chunk_documents
from evals.tokens import Tokenizer

Embedder = Callable[[list[str]], Awaitable[np.ndarray]]


@dataclass
class RetrievalEnv:
    """What a retriever may need to build or query: an embedder for dense retrieval.

    ``embed`` embeds queries; ``embed_corpus`` (when set) embeds a whole corpus of chunks, once.
    """

    embed: Embedder | None = None
    embed_key: str = ""  # identifies the embedding model, part of the index key
    embed_corpus: Embedder | None = None

    @classmethod
    def from_embedder(cls, embedder: Any) -> RetrievalEnv:
        """An env backed by an :class:`evals.embeddings.Embedder`."""
        return cls(embed=embedder.embed, embed_key=embedder.key, embed_corpus=embedder.embed_corpus)

    async def corpus_vectors(self, texts: list[str]) -> np.ndarray:
        fn = self.embed_corpus or self.embed
        if fn is None:
            raise UserInputError("dense retrieval needs embeddings: set 'embedding_model' on the endpoint, "
                                 "or an 'embeddings' section (source: endpoint | local) in the run",
                                 field="embeddings")
        return await fn(texts)

    async def query_vector(self, query: str) -> np.ndarray:
        if self.embed is None:
            raise UserInputError("dense retrieval needs embeddings: set 'embedding_model' on the endpoint, "
                                 "or an 'embeddings' section (source: endpoint | local) in the run",
                                 field="embeddings")
        return np.asarray(await self.embed([query]))[0]


class Retriever(ABC):
    """Scores every chunk of an index against a query."""

    name: ClassVar[str]
    uses_embeddings: ClassVar[bool] = False

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    async def build(self, chunks: list[Chunk], env: RetrievalEnv) -> None: ...

    @abstractmethod
    async def scores(self, query: str, env: RetrievalEnv, mask: np.ndarray | None = None) -> np.ndarray:
        """One score per chunk (higher is better). ``mask`` marks the chunks that may be returned;
        a retriever whose scores depend on the candidate set (rank fusion) honours it."""

    def key(self, env: RetrievalEnv) -> str:
        return stable_hash([self.name, self.params.model_dump()])[:16]


if TYPE_CHECKING:
    RetrieverName = str
else:  # a parameter naming a registered retriever
    RetrieverName = registry.component_name("retriever")


def uses_embeddings(name: str | None) -> bool:
    """Whether the registered retriever ``name`` needs an embedder."""
    if name is None or name not in registry.names("retriever"):
        return False
    return bool(registry.get("retriever", name).target.uses_embeddings)


def build_retriever(name: str, params: dict[str, Any] | None = None) -> Retriever:
    """The retriever ``name`` (registered with ``@evals.registry.retriever()``) with validated params."""
    registry.get("retriever", name, field_name="retriever")
    built: Retriever = registry.build("retriever", name, params, field_prefix="retriever_params")
    return built


@dataclass
class Index:
    chunks: list[Chunk]
    retriever: Retriever
    doc_chunk_ids: dict[str, list[int]] = field(default_factory=dict)

    def mask_for(self, doc_ids: list[str] | None) -> np.ndarray | None:
        if doc_ids is None:
            return None
        mask = np.zeros(len(self.chunks), dtype=bool)
        for d in doc_ids:
            for i in self.doc_chunk_ids.get(d, []):
                mask[i] = True
        return mask

    async def search(self, query: str, k: int, env: RetrievalEnv, *,
                     doc_ids: list[str] | None = None) -> list[tuple[Chunk, float]]:
        """Top ``k`` chunks (restricted to ``doc_ids`` when given), best first; ties keep corpus order."""
        if not self.chunks or k <= 0:
            return []
        mask = self.mask_for(doc_ids)
        s = np.asarray(await self.retriever.scores(query, env, mask), dtype=np.float64)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        order = top_k(s, k)
        out = []
        for i in order:
            if not np.isfinite(s[i]):
                break
            out.append((self.chunks[int(i)], float(s[i])))
        return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, ties by position; without sorting every score
    (a partition finds the k-th score, and only the candidates at or above it are sorted)."""
    n = len(scores)
    neg = -scores
    if k < n:
        kth = np.partition(neg, k - 1)[k - 1]
        candidates = np.flatnonzero(neg <= kth)
    else:
        candidates = np.arange(n)
    return candidates[np.lexsort((candidates, neg[candidates]))][:k]


class IndexCache:
    """Builds each index once and keeps the most recent ones (per process, across runs)."""

    def __init__(self, max_items: int = 16) -> None:
        self._items: OrderedDict[str, Index] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._max = max_items
        self.builds = 0
        # corpus hashes by the identity of the document objects (kept referenced, so ids stay theirs):
        # every case of a run asks with the same documents, and hashing 1M tokens costs milliseconds
        self._hashes: OrderedDict[tuple[int, ...], tuple[str, list[Document]]] = OrderedDict()

    def corpus_hash(self, docs: list[Document]) -> str:
        ident = tuple(id(d) for d in docs)
        hit = self._hashes.get(ident)
        if hit is not None:
            self._hashes.move_to_end(ident)
            return hit[0]
        value = stable_hash([[d.id, d.title, d.text] for d in docs])
        self._hashes[ident] = (value, list(docs))
        while len(self._hashes) > 4 * self._max:
            self._hashes.popitem(last=False)
        return value

    async def get(self, docs: list[Document], chunking: ChunkingParams, retriever: Retriever,
                  tokenizer: Tokenizer, env: RetrievalEnv) -> Index:
        corpus_hash = self.corpus_hash(docs)
        key = stable_hash([corpus_hash, chunking.key, retriever.key(env), env.embed_key, tokenizer.name])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            chunks = await asyncio.to_thread(chunk_documents, docs, chunking, tokenizer)
            retriever = type(retriever)(retriever.params)  # each index its own state: the caller's is shared
            await retriever.build(chunks, env)
            index = Index(chunks=chunks, retriever=retriever)
            for i, c in enumerate(chunks):
                index.doc_chunk_ids.setdefault(c.doc_id, []).append(i)
            self._items[key] = index
            self.builds += 1
            while len(self._items) > self._max:
                self._items.popitem(last=False)
            return index


DEFAULT_INDEX_CACHE = IndexCache()
