"""Retriever interface, registry, and the index cache (one index per corpus × chunking × retriever).

An index covers a whole suite corpus; a question whose long context is a subset of the corpus
(``Question.doc_ids``) searches with a mask so only its own documents can be returned.

Given a directory, the index cache also keeps every index it builds on disk (its chunks and the
retriever's state), keyed by corpus hash, chunking, retriever, embedder and tokenizer, and the token
counts of large texts (a whole corpus rendered as one context) keyed by tokenizer and text hash; other
runs and other processes then load them instead of building and counting again. The caller chooses
the directory; the engine reads no environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from evals import registry
from evals.domain import ENGINE_VERSION, Document, stable_hash
from evals.errors import UserInputError
from evals.retrieval.chunking import Chunk, ChunkingParams, chunk_documents
from evals.tokens import Tokenizer

Embedder = Callable[[list[str]], Awaitable[np.ndarray]]
log = logging.getLogger("ctxeval.retrieval")
DISK_FORMAT = 2  # bump when what is stored, or how chunks are cut, changes: older entries are not read
# (2: chunks counted from one encoding of each document)
# Token counts are kept on disk only for texts at least this long (about 25k tokens, several ms to count):
# a shorter text counts faster than a file is written and read again.
STORED_COUNT_MIN_CHARS = 100_000


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
        vector: np.ndarray = np.asarray(await self.embed([query]))[0]
        return vector


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

    def save(self, directory: Path) -> bool:
        """Write the built state into ``directory`` (which exists); False when this retriever cannot."""
        return False

    def load(self, directory: Path, n_chunks: int) -> bool:
        """Take the state :meth:`save` wrote; False when there is none to take."""
        return False


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
    """Builds each index once and keeps the most recent ones (per process, across runs); with a
    ``directory``, also on disk, for other runs and processes."""

    def __init__(self, max_items: int = 16, directory: str | Path | None = None) -> None:
        self._items: OrderedDict[str, Index] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._max = max_items
        self.directory = Path(directory) if directory is not None else None
        self.builds = 0
        self.loads = 0  # indexes read from the directory instead of built
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
            retriever = type(retriever)(retriever.params)  # each index its own state: the caller's is shared
            folder = self._folder("index", key)
            index = await asyncio.to_thread(self._load, folder, retriever) if folder is not None else None
            if index is None:
                chunks = await asyncio.to_thread(chunk_documents, docs, chunking, tokenizer)
                await retriever.build(chunks, env)
                index = _indexed(chunks, retriever)
                self.builds += 1
                if folder is not None:
                    await asyncio.to_thread(self._save, folder, index)
            else:
                self.loads += 1
            self._items[key] = index
            while len(self._items) > self._max:
                self._items.popitem(last=False)
            return index

    # ------------------------------------------------------------------------------------------ on disk
    def _folder(self, kind: str, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / kind / stable_hash([DISK_FORMAT, ENGINE_VERSION, key])[:40]

    @staticmethod
    def _load(folder: Path, retriever: Retriever) -> Index | None:
        try:
            rows = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
            chunks = [Chunk(**row) for row in rows]
            if not retriever.load(folder, len(chunks)):
                return None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as e:  # unreadable: built again, and replaced
            log.warning("index cache entry %s is unreadable (%s); building it again", folder, e)
            return None
        return _indexed(chunks, retriever)

    @staticmethod
    def _save(folder: Path, index: Index) -> None:
        """Write into a fresh folder beside the entry, then rename it into place: a reader sees a whole
        entry or none, and of two processes saving the same index one rename wins."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            if not index.retriever.save(tmp):
                return
            (tmp / "chunks.json").write_text(json.dumps([asdict(c) for c in index.chunks], ensure_ascii=False),
                                             encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)  # an unreadable entry being replaced
            os.replace(tmp, folder)
        except OSError as e:
            if not folder.exists():
                log.warning("could not store the index in %s: %s", folder, e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def stored_count(self, text: str, tokenizer: Tokenizer) -> int | None:
        """The token count of ``text`` stored earlier with :meth:`store_count`, if any."""
        path = self._count_path(text, tokenizer)
        if path is None:
            return None
        try:
            return int(path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def store_count(self, text: str, tokenizer: Tokenizer, count: int) -> None:
        path = self._count_path(text, tokenizer)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(str(int(count)), encoding="ascii")
            os.replace(tmp, path)
        except OSError as e:
            log.warning("could not store a token count in %s: %s", path, e)

    def _count_path(self, text: str, tokenizer: Tokenizer) -> Path | None:
        # a server's tokenizer can change with what the server loads: only local ones are kept; a short
        # text counts faster than a file is written and read, so only long ones are kept
        if self.directory is None or getattr(tokenizer, "remote", False) or len(text) < STORED_COUNT_MIN_CHARS:
            return None
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        folder = self._folder("counts", tokenizer.name)
        return folder / digest if folder is not None else None


def _indexed(chunks: list[Chunk], retriever: Retriever) -> Index:
    index = Index(chunks=chunks, retriever=retriever)
    for i, c in enumerate(chunks):
        index.doc_chunk_ids.setdefault(c.doc_id, []).append(i)
    return index


DEFAULT_INDEX_CACHE = IndexCache()
