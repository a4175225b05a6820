"""RULER common-words extraction: a numbered, shuffled list where a few words repeat far more often.

``num_common`` words appear ``common_repeats`` times each, every other word ``uncommon_repeats`` times;
the number of uncommon words grows until the list fills the length. Words come from the nouns,
adjectives and verbs RULER uses; past that pool, adjective-noun pairs. Answer: the common words
(scored with ``ruler_all``).
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from evals import registry
from evals.domain import Question, Suite
from evals.errors import UserInputError
from evals.presets import RULER_CWE, render
from evals.tokens import Tokenizer

from .base import CommonParams, Item, cell_rng, make_suite, parse_params, preset_framing
from .sizing import TokenCounter, fit
from .text import common_word_pool, random_word

TEMPLATE = ("The provided text is a numbered list of words. In these words, some appear more often than "
            "others. Memorize the ones that appear most often.\n"
            "Question: What are the {n} most common words in the list?")
ANSWER_PREFIX = "Answer: The top {n} words that appear most often in the list are:"


class CweParams(CommonParams):
    num_common: int = Field(default=10, ge=1, le=100)
    common_repeats: int | None = Field(default=None, ge=2, le=1000,
                                       description="default RULER's: 30 from 4,096 tokens, 6 below")
    uncommon_repeats: int | None = Field(default=None, ge=1, le=1000, validate_default=True,
                                         description="default RULER's: 3 from 4,096 tokens, 1 below")

    @field_validator("uncommon_repeats")
    @classmethod
    def _repeats(cls, v: int | None, info: ValidationInfo) -> int | None:
        common = info.data.get("common_repeats")
        if v is not None and common is not None and v >= common:
            raise ValueError(f"uncommon_repeats ({v}) must be smaller than common_repeats ({common})")
        return v

    def repeats(self, length: int) -> tuple[int, int]:
        """(common, uncommon) repeats at ``length``: RULER uses 30/3 from 4,096 tokens and 6/1 below
        (common_words_extraction.py ``generate_input_output``) unless given."""
        common = self.common_repeats if self.common_repeats is not None else (30 if length >= 4096 else 6)
        uncommon = self.uncommon_repeats if self.uncommon_repeats is not None else (3 if length >= 4096 else 1)
        if uncommon >= common:
            raise UserInputError(f"ruler_cwe: uncommon_repeats ({uncommon}) must be smaller than common_repeats "
                                 f"({common}) at length {length}", field="uncommon_repeats")
        return common, uncommon


def framing_measure(framing: Any, tokenizer: Tokenizer) -> Any:
    return lambda text: framing.measure(tokenizer, text)


def worked_example(rng: random.Random, length: int, num_common: int) -> str:
    """RULER's one in-context example (``--num_fewshot 1``): 40 words, 10 common ×10, the rest ×3 (20
    words, ×3 and ×1 below 4,096 tokens), asked with the template and answered after the answer prefix."""
    size, common_n, uncommon_n = (40, 10, 3) if length >= 4096 else (20, 3, 1)
    words = _words(rng, size)[:size]
    common, rest = words[:num_common], words[num_common:]
    listed = common * common_n + rest * uncommon_n
    rng.shuffle(listed)
    stub = Question(id="example", question="example")
    filled = render(RULER_CWE, stub, numbered(listed))
    return filled.user + filled.answer_prefix + " " + numbered(common) + "\n"


def numbered(words: list[str]) -> str:
    return " ".join(f"{i + 1}. {w}" for i, w in enumerate(words))


class _NumberTokens:
    """Estimated tokens of the list numbering " 1." … " m.", from samples of each digit count."""

    def __init__(self, counter: TokenCounter) -> None:
        self.per_digits = [0.0]
        for d in range(1, 9):
            lo, hi = 10 ** (d - 1), 10**d - 1
            samples = [lo + k * (hi - lo) // 8 for k in range(9)]
            self.per_digits.append(sum(counter(f" {n}.") for n in samples) / len(samples))

    def upto(self, m: int) -> float:
        total, lo = 0.0, 1
        for d in range(1, len(self.per_digits)):
            hi = min(m, 10**d - 1)
            if hi >= lo:
                total += (hi - lo + 1) * self.per_digits[d]
            lo = 10**d
        return total


def _words(rng: random.Random, needed: int) -> list[str]:
    pool = list(common_word_pool())
    rng.shuffle(pool)
    seen = set(pool)
    while len(pool) < needed:
        w = random_word(rng)
        if w not in seen:
            seen.add(w)
            pool.append(w)
    return pool


@registry.generator("ruler_cwe", params=CweParams)
def generate_ruler_cwe(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    kind = "ruler_cwe"
    p = parse_params(CweParams, params, kind)
    counter = TokenCounter(tokenizer)
    numbers = _NumberTokens(counter)
    question = TEMPLATE.format(n=p.num_common)
    items: list[Item] = []
    for length in p.lengths:
        common_repeats, uncommon_repeats = p.repeats(length)
        example = worked_example(cell_rng(kind, p.seed, "example", length >= 4096), length, p.num_common)
        framing = preset_framing("ruler", kind, question, {"icl_example": example})
        q_tokens = framing.fixed(counter)
        for sample in range(p.samples):
            rng = cell_rng(kind, p.seed, length, sample)
            n_max = length // (2 * uncommon_repeats) + 1
            words = _words(rng, p.num_common + n_max)
            common, rest = words[: p.num_common], words[p.num_common:]
            shuffle_seed = rng.getrandbits(64)
            word_tokens = [counter(" " + w) for w in words[: p.num_common + n_max]]
            common_cost = common_repeats * sum(word_tokens[: p.num_common])
            cum = [0]
            for t in word_tokens[p.num_common:]:
                cum.append(cum[-1] + t * uncommon_repeats)

            def build(n: int, common: list[str] = common, rest: list[str] = rest, seed: int = shuffle_seed,
                      cr: int = common_repeats, ur: int = uncommon_repeats) -> str:
                listed = common * cr + rest[:n] * ur
                random.Random(seed).shuffle(listed)
                return numbered(listed)

            def estimate(n: int, cum: list[int] = cum, common_cost: int = common_cost,
                         cr: int = common_repeats, ur: int = uncommon_repeats, fixed: int = q_tokens) -> float:
                m = p.num_common * cr + n * ur
                return fixed + common_cost + cum[n] + numbers.upto(m)

            fitted = fit(length, build, framing_measure(framing, tokenizer), estimate, n_max=n_max, what=kind)
            doc_tokens = tokenizer.count(fitted.value)
            items.append(Item(
                qid=f"{kind}-{length}-{sample}", question=question, answers=common, doc_text=fitted.value,
                spans=[], length=length, doc_tokens=doc_tokens,
                question_tokens=fitted.tokens - framing.extra - doc_tokens,
                meta={"num_words": p.num_common + fitted.n, "common_repeats": common_repeats,
                      "uncommon_repeats": uncommon_repeats, "sample": sample,
                      "answer_prefix": ANSWER_PREFIX.format(n=p.num_common), **framing.meta()}))
    return make_suite(kind, f"RULER common words extraction, top {p.num_common}", items, ["ruler_all"], p,
                      tokenizer, preset="ruler")
