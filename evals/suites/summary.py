"""What a suite holds: counts, token lengths per power-of-two bucket, question types, a sample."""

from __future__ import annotations

from collections import Counter
from typing import Any

from evals.domain import Suite
from evals.tokens import Tokenizer


def bucket(tokens: int) -> str:
    """The power-of-two range ``tokens`` falls in, e.g. ``1024-2047``; ``0`` on its own."""
    if tokens <= 0:
        return "0"
    low = 1 << (tokens.bit_length() - 1)
    return f"{low}-{2 * low - 1}"


def _buckets(values: list[int]) -> dict[str, int]:
    counted = Counter(bucket(v) for v in values)
    return {k: counted[k] for k in sorted(counted, key=lambda b: int(b.split("-")[0]))}


def summarize(suite: Suite, tokenizer: Tokenizer) -> dict[str, Any]:
    """Counts and token statistics of ``suite`` (document tokens = ``tokenizer.count(text)``)."""
    doc_tokens = {d.id: tokenizer.count(d.text) for d in suite.documents}
    corpus = sum(doc_tokens.values())
    contexts = [corpus if q.doc_ids is None else sum(doc_tokens[i] for i in q.doc_ids)
                for q in suite.questions]
    qtypes = Counter(str(q.metadata.get("qtype") or q.metadata.get("task") or "-") for q in suite.questions)
    sample = next((q for q in suite.questions if q.answers and q.evidence), suite.questions[0])
    return {
        "name": suite.name,
        "content_hash": suite.content_hash,
        "documents": len(suite.documents),
        "questions": len(suite.questions),
        "tokenizer": tokenizer.name,
        "corpus_tokens": corpus,
        "document_tokens": _buckets(list(doc_tokens.values())),
        "context_tokens": _buckets(contexts),
        "question_types": dict(sorted(qtypes.items())),
        "with_evidence": sum(1 for q in suite.questions if q.evidence),
        "unanswerable": sum(1 for q in suite.questions if q.unanswerable),
        "sample": {"id": sample.id, "question": sample.question, "answers": sample.answers,
                   "evidence": [e.doc_id for e in sample.evidence]},
    }


def render(summary: dict[str, Any]) -> str:
    """The summary as plain text for a terminal."""
    lines = [f"suite {summary['name']}  ({summary['content_hash'][:12]})",
             f"documents: {summary['documents']:,}   questions: {summary['questions']:,}   "
             f"with evidence: {summary['with_evidence']:,}   unanswerable: {summary['unanswerable']:,}",
             f"corpus: {summary['corpus_tokens']:,} {summary['tokenizer']} tokens"]
    for key, label in (("document_tokens", "document tokens"), ("context_tokens", "context tokens per question")):
        lines.append(f"{label}:")
        lines += [f"  {b:>17}  {n:,}" for b, n in summary[key].items()]
    lines.append("question types:")
    lines += [f"  {k:>17}  {n:,}" for k, n in summary["question_types"].items()]
    s = summary["sample"]
    lines += ["sample question:", f"  [{s['id']}] {s['question']}",
              f"  answers: {', '.join(s['answers']) or '-'}", f"  evidence: {', '.join(s['evidence']) or '-'}"]
    return "\n".join(lines)
