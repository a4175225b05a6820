"""Chunking and retrieval: chunkers, retrievers registered by name, and the per-suite index cache."""

from evals.retrieval import bm25, dense, hybrid  # noqa: F401  (registration)
from evals.retrieval.base import RETRIEVERS, Index, IndexCache, Retriever, register_retriever
from evals.retrieval.chunking import Chunk, ChunkingParams, chunk_documents

__all__ = ["RETRIEVERS", "Chunk", "ChunkingParams", "Index", "IndexCache", "Retriever", "chunk_documents",
           "register_retriever"]
