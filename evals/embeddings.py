"""Text embeddings for dense retrieval, from three sources, computed once per corpus.

- :class:`EndpointEmbedder`: an endpoint's ``/v1/embeddings`` (the tested endpoint, or a separate
  endpoint used only for embeddings), with the client's retry policy and error classes.
- :class:`LocalEmbedder`: a static model shipped inside the ``wordllama`` wheel (``pip install
  'ctxeval[embed-local]'``); nothing is downloaded at run time.

Every embedder batches its requests (``batch_size``) and returns L2-normalised float32 rows. A corpus
(``embed_corpus``) is embedded once per process and, when a ``cache_dir`` is given, stored as
``<cache_dir>/<key>.npy`` keyed by the embedder and the texts' hash, so a later process loads it.
Query embeddings (``embed``) are memoised per text in memory.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evals.client import ModelClient
from evals.domain import Endpoint, Usage, stable_hash
from evals.errors import PermanentError, UserInputError

LOCAL_MODELS = {"wordllama": ("l2_supercat", 256)}  # name -> (wordllama config, dimensions)


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero) as float32."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise PermanentError(f"embeddings: expected a 2-d array, got shape {v.shape}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1.0, norms)


class Embedder(ABC):
    """Turns texts into unit vectors. ``key`` names the model (part of every index and cache key)."""

    key: str

    def __init__(self, *, batch_size: int = 64, cache_dir: str | Path | None = None,
                 query_cache_size: int = 10_000) -> None:
        if batch_size < 1:
            raise UserInputError("batch_size must be at least 1", field="embeddings.batch_size")
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.usage = Usage()  # tokens the embedding requests reported, corpora and queries together
        self.requests = 0  # embedding batches computed (not served from a cache)
        self._corpora: dict[str, np.ndarray] = {}
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_size = query_cache_size
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}

    @abstractmethod
    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Raw vectors for one batch (any scale)."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release what the embedder holds (an HTTP client)."""

    async def _compute(self, texts: list[str]) -> np.ndarray:
        parts = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            vectors = normalise_rows(await self._embed_batch(batch))
            if vectors.shape[0] != len(batch):
                raise PermanentError(f"embeddings: asked for {len(batch)} vectors, got {vectors.shape[0]}")
            self.requests += 1
            parts.append(vectors)
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        dims = {p.shape[1] for p in parts}
        if len(dims) != 1:
            raise PermanentError(f"embeddings: batches came back with different dimensions {sorted(dims)}")
        return np.concatenate(parts)

    def corpus_key(self, texts: list[str]) -> str:
        return stable_hash([self.key, stable_hash(texts)])[:32]

    async def embed_corpus(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` (one row each), computed once per process and per cache dir."""
        key = self.corpus_key(texts)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._corpora:
                return self._corpora[key]
            path = self.cache_dir / f"{key}.npy" if self.cache_dir is not None else None
            vectors = await asyncio.to_thread(_load, path, len(texts)) if path is not None else None
            if vectors is None:
                vectors = await self._compute(texts)
                if path is not None:
                    await asyncio.to_thread(_save, path, vectors)
            self._corpora[key] = vectors
            return vectors

    async def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of short texts (queries), memoised per text in memory; a text asked for by two
        cases at once is embedded once."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._queries and t not in self._pending]
        if todo:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for t in todo:
                self._pending[t] = done
            try:
                for t, v in zip(todo, await self._compute(todo), strict=True):
                    self._queries[t] = v
                done.set_result(None)
            except BaseException as e:
                done.set_exception(e)
                done.exception()  # retrieved here; waiters re-raise it
                raise
            finally:
                for t in todo:
                    self._pending.pop(t, None)
        for waiting in {id(f): f for t in texts if (f := self._pending.get(t)) is not None}.values():
            await waiting
        for t in texts:
            self._queries.move_to_end(t)
        while len(self._queries) > self._query_cache_size:
            self._queries.popitem(last=False)
        return np.stack([self._queries[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


def _load(path: Path, rows: int) -> np.ndarray | None:
    try:
        v = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # missing or torn: compute again
    return v if v.ndim == 2 and v.shape[0] == rows else None


def _save(path: Path, vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{id(vectors)}.tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)


class EndpointEmbedder(Embedder):
    """``/v1/embeddings`` of an endpoint; errors are the client's (:class:`~evals.errors.EndpointError`)."""

    def __init__(self, endpoint: Endpoint, *, model: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.client = ModelClient(endpoint, transport=transport)
        self.model = model or endpoint.embedding_model or endpoint.model
        self.key = f"endpoint:{endpoint.base_url}:{self.model}"

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors, usage = await self.client.embed(texts, model=self.model)
        self.usage = self.usage + usage
        return np.asarray(vectors, dtype=np.float32)

    async def aclose(self) -> None:
        await self.client.aclose()


class LocalEmbedder(Embedder):
    """A static embedding model shipped in the ``wordllama`` wheel (256 dimensions, CPU, no download)."""

    def __init__(self, model: str = "wordllama", **kw: Any) -> None:
        super().__init__(**kw)
        if model not in LOCAL_MODELS:
            raise UserInputError(f"unknown local embedding model '{model}'; known: {', '.join(LOCAL_MODELS)}",
                                 field="embeddings.model")
        self.model = model
        config, self.dim = LOCAL_MODELS[model]
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as e:
            raise UserInputError("the local embedding model needs the 'wordllama' package: "
                                 "pip install 'ctxeval[embed-local]'", field="embeddings.source") from e
        self.key = f"local:{model}:{config}:{self.dim}:{getattr(wordllama, '__version__', '')}"
        self._model = WordLlama.load(config=config, dim=self.dim, cache_dir=Path(wordllama.__file__).parent,
                                     disable_download=True)

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self._model.embed, texts, norm=True)


class EmbeddingSettings(BaseModel):
    """Where a run's embeddings come from (the ``embeddings:`` section of a run file).

    ``source``: ``endpoint`` = ``/v1/embeddings`` of ``endpoint`` when given (a separate embedding
    endpoint), else of the first tested endpoint that sets ``embedding_model``, else of the first
    tested endpoint; ``local`` = the model shipped in ``wordllama``; ``auto`` = ``endpoint`` when a
    separate endpoint or an ``embedding_model`` is set, else ``local``.
    """

    model_config = ConfigDict(extra="forbid")

    source: Literal["auto", "endpoint", "local"] = "auto"
    endpoint: Endpoint | None = None
    model: str | None = Field(default=None, description="embedding model name (endpoint) or local model name")
    batch_size: int = Field(default=64, ge=1, le=4096)
    cache_dir: str | None = Field(default=None, description="directory for the .npy corpus cache")


def make_embedder(settings: EmbeddingSettings | None, endpoints: list[Endpoint], *,
                  transport: httpx.AsyncBaseTransport | None = None) -> Embedder:
    """The embedder ``settings`` describe (defaults: ``EmbeddingSettings()``)."""
    s = settings or EmbeddingSettings()
    kw: dict[str, Any] = {"batch_size": s.batch_size, "cache_dir": s.cache_dir}
    with_model = next((e for e in endpoints if e.embedding_model), None)
    source = s.source
    if source == "auto":
        source = "endpoint" if (s.endpoint is not None or with_model is not None) else "local"
    if source == "local":
        return LocalEmbedder(s.model or "wordllama", **kw)
    target = s.endpoint or with_model or (endpoints[0] if endpoints else None)
    if target is None:
        raise UserInputError("embeddings from an endpoint need an endpoint", field="embeddings.endpoint")
    return EndpointEmbedder(target, model=s.model, transport=transport, **kw)
