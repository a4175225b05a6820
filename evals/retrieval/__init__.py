"""Chunking and retrieval: chunkers and retrievers (registered with ``@evals.registry.chunker()`` and
``@evals.registry.retriever()``), and the per-suite index cache."""

from evals.retrieval.base import Index, IndexCache, Retriever, build_retriever
from evals.retrieval.chunking import Chunk, ChunkingParams, chunk_documents

__all__ = ["Chunk", "ChunkingParams", "Index", "IndexCache", "Retriever", "build_retriever", "chunk_documents"]
