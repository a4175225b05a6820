"""Suites for the benchmarks, generated from a seed (no files, nothing downloaded).

``short_suite``: N short cases, each question with a small document of its own (about 80 tokens).
``corpus_suite``: a corpus of essay-like documents of about ``tokens`` tokens with facts planted in it,
and questions asking for those facts (answerable by retrieval).
"""

from __future__ import annotations

import random

from evals.domain import Document, Evidence, Question, Suite
from evals.suites.text import essay_text, random_number, random_word

TOKENS_PER_WORD = 1.23  # essay prose under cl100k, close enough to size a corpus


def short_suite(n: int, *, salt: str = "", answer: str = "42") -> Suite:
    """``n`` questions, question i reading only document i (two sentences of filler and one fact)."""
    docs, questions = [], []
    for i in range(n):
        docs.append(Document(id=f"d{i}", title=f"Note {i}",
                             text=(f"The grass is green and the sky is blue{salt}. The sun is yellow. "
                                   f"The code of item {i} is: {answer}. Here we go, there and back again.")))
        questions.append(Question(id=f"q{i}", question=f"What is the code of item {i}{salt}?", answers=[answer],
                                  evidence=[Evidence(doc_id=f"d{i}")], doc_ids=[f"d{i}"]))
    return Suite(name=f"bench-short-{n}", documents=docs, questions=questions, default_scorers=["exact_match"])


def corpus_documents(tokens: int, *, seed: int = 0, doc_tokens: int = 2000) -> list[Document]:
    """Essay-like documents of about ``doc_tokens`` tokens each, ``tokens`` in all."""
    n_docs = max(1, round(tokens / doc_tokens))
    words = max(20, int(tokens / n_docs / TOKENS_PER_WORD))
    return [Document(id=f"doc{i:05d}", title=f"Essay {i}", text=essay_text(seed * 100_003 + i, words))
            for i in range(n_docs)]


def corpus_suite(tokens: int, n_questions: int, *, seed: int = 0, doc_tokens: int = 2000) -> Suite:
    """A corpus of about ``tokens`` tokens; each question asks for a fact planted in one document."""
    rng = random.Random(f"bench-corpus:{seed}")
    docs = corpus_documents(tokens, seed=seed, doc_tokens=doc_tokens)
    facts: dict[int, list[str]] = {}
    questions = []
    for qn in range(n_questions):
        d = rng.randrange(len(docs))
        key, value = random_word(rng), random_number(rng)
        facts.setdefault(d, []).append(f"The registry code of the {key} project is {value}.")
        questions.append(Question(id=f"q{qn:05d}", question=f"What is the registry code of the {key} project?",
                                  answers=[value], evidence=[Evidence(doc_id=docs[d].id)]))
    for d, sentences in facts.items():
        paragraphs = docs[d].text.split("\n\n")
        for s in sentences:
            at = rng.randrange(len(paragraphs))
            paragraphs[at] = f"{paragraphs[at]} {s}"
        docs[d] = docs[d].model_copy(update={"text": "\n\n".join(paragraphs)})
    return Suite(name=f"bench-corpus-{tokens}", documents=docs, questions=questions,
                 default_scorers=["exact_match"])
