"""Prompt templates. Documents come first and the question last, so server prefix caches hit."""

from __future__ import annotations

from evals.domain import Document

SYSTEM = ("You are a careful assistant. Answer the question based only on the provided documents. "
          "Reply with the answer alone: a short phrase, no explanation.")
SYSTEM_NO_CONTEXT = "You are a careful assistant. Reply with the answer alone: a short phrase, no explanation."
UNANSWERABLE = "unanswerable"
ROUTE_INSTRUCTION = (f"If the passages do not contain the information needed to answer, reply exactly "
                     f"'{UNANSWERABLE}'.")


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


def is_unanswerable(answer: str) -> bool:
    a = answer.strip().lower().strip(".!\"' ")
    return a == UNANSWERABLE or a.startswith(UNANSWERABLE)
