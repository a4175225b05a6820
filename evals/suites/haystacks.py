"""The haystacks RULER-style tasks share (noise, essay, distractor needles) and sizing with needles in them."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence

from evals.tokens import Tokenizer

from .base import Framing
from .prose import prose_text, read_haystack_file
from .sizing import Span, TokenCounter, UnitHaystack, fit
from .text import NOISE_SENTENCES, ends_sentence

RULER_DEPTHS = [round(i * 100 / 39) for i in range(40)]
"""RULER's grid of needle depths: 40 evenly spaced percents from 0 to 100."""


def noise_haystack(target: int, counter: TokenCounter) -> UnitHaystack:
    """RULER's noise: five fixed sentences per line, lines joined by newlines, needles on lines of their own."""
    per_line = sum(counter(s) for s in NOISE_SENTENCES)
    lines = target // max(per_line - len(NOISE_SENTENCES), 1) + 2
    pieces: list[str] = []
    slots: list[bool] = []
    for i in range(lines * len(NOISE_SENTENCES)):
        k = i % len(NOISE_SENTENCES)
        joiner = "" if i == 0 else ("\n" if k == 0 else " ")
        pieces.append(joiner + NOISE_SENTENCES[k])
        slots.append(k == 0)
    return UnitHaystack(pieces, slots, "\n", counter)


def words_haystack(text: str, target: int, counter: TokenCounter) -> UnitHaystack:
    """Prose as RULER uses it: whitespace collapsed, cut by words, needles at sentence ends.

    The text is repeated when it is shorter than ``target`` words need.
    """
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    words = [w for w in words if w]
    if not words:
        raise ValueError("the haystack text has no words")
    need = target + 64  # every word is at least one token
    if len(words) < need:
        words = (words * math.ceil(need / len(words)))[:need]
    pieces = [words[0]] + [" " + w for w in words[1:need]]
    slots = [True] + [ends_sentence(w) for w in words[: len(pieces) - 1]]
    return UnitHaystack(pieces, slots, " ", counter)


def essay_haystack(seed: int, target: int, counter: TokenCounter, text: str | None = None) -> UnitHaystack:
    """The user's text when given, else the bundled public-domain prose (``evals.suites.prose``)."""
    return words_haystack(text if text is not None else prose_text(target + 64, seed), target, counter)


def user_haystack(text: str | None, file: str | None, min_words: int) -> str | None:
    """The user's haystack: ``haystack_text``, else the first ``min_words`` words of ``haystack_file``."""
    if text is not None:
        return text
    if file is not None:
        return read_haystack_file(file, min_words)
    return None


def lines_haystack(make: Callable[[random.Random], str], rng: random.Random, target: int,
                   counter: TokenCounter) -> UnitHaystack:
    """Lines drawn from ``make`` (e.g. distractor needles), one per line, needles between any two."""
    sample = [make(rng) for _ in range(8)]
    smallest = min(counter(s) for s in sample)
    count = target // max(smallest - 2, 1) + 4
    lines = sample + [make(rng) for _ in range(max(count - len(sample), 0))]
    pieces = [lines[0]] + ["\n" + s for s in lines[1:]]
    return UnitHaystack(pieces, [True] * len(pieces), "\n", counter)


def fit_needles(hay: UnitHaystack, needles: Sequence[str], depths: Sequence[float], framing: Framing,
                target: int, tokenizer: Tokenizer, counter: TokenCounter, what: str
                ) -> tuple[str, list[Span], int, int]:
    """Size ``hay`` so the framed prompt (document + question, or a preset's whole prompt and reserve)
    fills ``target`` tokens with each needle at its depth.

    Returns the document text, the needles' character spans (in the order given), the document's
    tokens and the measured total.
    """
    needle_tokens = [counter(n) for n in needles]
    fixed = framing.fixed(counter) + sum(needle_tokens) + counter(hay.sep) * len(needles)

    def build(n: int) -> tuple[str, list[Span]]:
        return hay.render(n, needles, hay.place(n, depths, needle_tokens))

    def measure(value: tuple[str, list[Span]]) -> int:
        return framing.measure(tokenizer, value[0])

    fitted = fit(target, build, measure, lambda n: hay.estimate(n) + fixed, n_max=len(hay), what=what)
    text, spans = fitted.value
    doc_tokens = fitted.tokens - framing.extra if framing.wrap is None else tokenizer.count(text)
    return text, spans, doc_tokens, fitted.tokens
