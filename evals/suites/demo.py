"""The demo suite: a short needle grid plus a slice of the synthetic multi-hop corpus, fitted to an
8k-token window, small enough for a 135M-parameter model on two CPU cores."""

from __future__ import annotations

from typing import Literal

from evals.domain import Suite
from evals.suites.registry import generate
from evals.suites.sweep import sweep
from evals.tokens import Tokenizer

SIZES = {
    # needle lengths × depths, multihop corpus tokens, questions, and (tiny) the context each question gets
    "tiny": ([600], [0.0, 100.0], 4000, 2, 700),
    "small": ([1000, 3000], [0.0, 50.0, 100.0], 4000, 6, None),
}


def demo_suite(tokenizer: Tokenizer, *, size: Literal["tiny", "small"] = "small", seed: int = 0) -> Suite:
    lengths, depths, corpus_tokens, samples, per_question = SIZES[size]
    niah = generate("niah", {"seed": seed, "lengths": lengths, "depths": depths}, tokenizer)
    multihop = generate("multihop", {"seed": seed, "target_tokens": corpus_tokens, "samples": samples,
                                     "qtypes": ["single_hop", "two_hop", "comparison", "unanswerable"]},
                        tokenizer)
    if per_question is not None:  # each question over its evidence and a few distractors only
        multihop = sweep(multihop, lengths=[per_question], depths=[50.0], tokenizer=tokenizer, seed=seed)
        mh_questions = list(multihop.questions)
    else:  # every question over the whole corpus: one shared prefix, so the server's cache serves it
        corpus = [d.id for d in multihop.documents]
        mh_questions = [q.model_copy(update={"doc_ids": corpus}) for q in multihop.questions]
    questions = list(niah.questions) + mh_questions
    return Suite(
        name=f"demo-{size}", description="Needles at several depths and lengths, and multi-hop questions "
        "over a generated organisation; fitted to an 8k-token window.",
        documents=list(niah.documents) + list(multihop.documents), questions=questions,
        default_scorers=["subspan_em", "f1"], metadata={"parts": ["niah", "multihop"], "size": size},
    )
