"""RULER frequent-words extraction: coded words with Zipf frequencies; name the three most frequent.

A vocabulary of ``vocab_size`` random lowercase strings of ``word_length`` letters is ranked at random;
rank ``k`` appears ⌊N·k^−α / ζ(α)⌋ times and the text is the shuffled multiset. Rank 1 is the filler
"..." the question tells the model to ignore, so the answer is ranks 2, 3 and 4 (scored with
``ruler_all``). N grows until the text fills the length.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from pydantic import Field

from evals import registry
from evals.domain import Suite
from evals.errors import UserInputError
from evals.tokens import Tokenizer

from .base import CommonParams, Item, cell_rng, make_suite, parse_params, preset_framing
from .sizing import TokenCounter, fit
from .text import random_code

FILLER = "..."
TEMPLATE = ("Read the provided coded text and track the frequency of each coded word. Find the three most "
            "frequently appeared coded words.\n"
            "Question: Do not provide any explanation. Please ignore the dots '....'. What are the three most "
            "frequently appeared words in the coded text?")
ANSWER_PREFIX = "Answer: According to the coded text above, the three most frequently appeared words are:"


class FweParams(CommonParams):
    alpha: float = Field(default=2.0, gt=1.0, le=10.0)
    vocab_size: int = Field(default=2000, ge=10, le=100_000)
    word_length: int = Field(default=6, ge=3, le=20)


def zeta(alpha: float) -> float:
    """Riemann ζ(α) for α > 1 (partial sum plus Euler-Maclaurin tail)."""
    k = 10_000
    head = float(np.sum(np.arange(1, k, dtype=np.float64) ** -alpha))
    tail: float = float(k) ** (1 - alpha) / (alpha - 1) + 0.5 * float(k) ** -alpha
    return head + tail


def counts(n: int, ranks: np.ndarray, alpha: float, z: float) -> np.ndarray:
    return np.floor(n * ranks**-alpha / z).astype(np.int64)


@registry.generator("ruler_fwe", params=FweParams)
def generate_ruler_fwe(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    kind = "ruler_fwe"
    p = parse_params(FweParams, params, kind)
    counter = TokenCounter(tokenizer)
    question = TEMPLATE
    framing = preset_framing("ruler", kind, question, {})
    q_tokens = framing.fixed(counter)
    z = zeta(p.alpha)
    ranks = np.arange(1, p.vocab_size + 1, dtype=np.float64)
    items: list[Item] = []
    for length in p.lengths:
        for sample in range(p.samples):
            rng = cell_rng(kind, p.seed, length, sample)
            vocab = sorted({random_code(rng, p.word_length) for _ in range(p.vocab_size)})
            while len(vocab) < p.vocab_size:
                vocab = sorted(set(vocab) | {random_code(rng, p.word_length)})
            rng.shuffle(vocab)
            vocab[0] = FILLER
            tokens = np.array([counter(" " + w) for w in vocab], dtype=np.float64)
            shuffle_seed = rng.getrandbits(64)

            def build(n: int, vocab: list[str] = vocab, seed: int = shuffle_seed) -> str:
                words = [w for w, c in zip(vocab, counts(n, ranks, p.alpha, z), strict=True) for _ in range(c)]
                random.Random(seed).shuffle(words)
                return " ".join(words)

            def estimate(n: int, tokens: np.ndarray = tokens) -> float:
                return q_tokens + float(counts(n, ranks, p.alpha, z) @ tokens)

            fitted = fit(length, build, lambda text: framing.measure(tokenizer, text), estimate,
                         n_max=length * 4, what=kind)
            doc_tokens = tokenizer.count(fitted.value)
            top = counts(fitted.n, ranks, p.alpha, z)[:5]
            if not top[1] > top[2] > top[3] > top[4]:
                raise UserInputError(f"ruler_fwe: length {length} is too short to make the three most frequent "
                                     "words stand apart; use a longer length", field="lengths")
            items.append(Item(
                qid=f"{kind}-{length}-{sample}", question=question, answers=vocab[1:4], doc_text=fitted.value,
                spans=[], length=length, doc_tokens=doc_tokens,
                question_tokens=fitted.tokens - framing.extra - doc_tokens,
                meta={"num_words": fitted.n, "counts": [int(c) for c in top[1:4]], "alpha": p.alpha,
                      "sample": sample, "answer_prefix": ANSWER_PREFIX, **framing.meta()}))
    return make_suite(kind, "RULER frequent words extraction", items, ["ruler_all"], p, tokenizer,
                      preset="ruler")
