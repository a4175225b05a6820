"""Prompt templates. Documents come first and the question last, so server prefix caches hit."""

from __future__ import annotations

import re

from evals.domain import Document

SYSTEM = ("You are a careful assistant. Answer the question based only on the provided documents. "
          "Reply with the answer alone: a short phrase, no explanation.")
SYSTEM_NO_CONTEXT = "You are a careful assistant. Reply with the answer alone: a short phrase, no explanation."
UNANSWERABLE = "unanswerable"
ROUTE_INSTRUCTION = "Write unanswerable if the query can not be answered based on the provided text."
"""Self-Route's routing instruction, in the words of Li et al. (2024), section 4."""


def render_document(doc: Document, n: int) -> str:
    head = f"[Document {n}: {doc.id}]"
    if doc.title:
        head += f" {doc.title}"
    return f"{head}\n{doc.text}"


def render_documents(docs: list[Document]) -> str:
    return "\n\n".join(render_document(d, i + 1) for i, d in enumerate(docs))


def long_context_user(documents_block: str, question: str) -> str:
    return (f"Documents:\n\n{documents_block}\n\n"
            f"Answer the question based only on the documents above.\n\nQuestion: {question}\nAnswer:")


def passages_user(passages_block: str, question: str, *, allow_unanswerable: bool = False) -> str:
    extra = f" {ROUTE_INSTRUCTION}" if allow_unanswerable else ""
    return (f"Passages:\n\n{passages_block}\n\n"
            f"Answer the question based only on the passages above.{extra}\n\nQuestion: {question}\nAnswer:")


def no_context_user(question: str) -> str:
    return f"Question: {question}\nAnswer:"


_MARKUP = re.compile(r"[*_`#>\"'“”‘’()\[\]]")
_DECLINE = re.compile(rf"\b{UNANSWERABLE}\b")


def is_unanswerable(answer: str) -> bool:
    """Whether a reply declines: the word "unanswerable" anywhere in it once markdown and quotes are
    stripped (``**Unanswerable**``, ``The question is unanswerable.``, ``This query is unanswerable based on
    the provided text.``)."""
    return bool(_DECLINE.search(_MARKUP.sub(" ", answer.lower())))
