"""Kamradt's needle in a haystack: one fact sentence hidden at a depth of a long text, asked after it.

The haystack (the user's ``haystack_text``, else essay-like prose generated from the seed) is rotated to
start at a sentence drawn from the cell's seed, repeated until long enough, encoded once per sample and
cut by token ids to ``length − question − needle`` tokens. The needle goes at token ⌊len·depth/100⌋ of
the cut text, moved back to the previous sentence end; at depth 100 it is appended at the end.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from evals import registry
from evals.domain import Suite
from evals.errors import UserInputError
from evals.tokens import Tokenizer

from .base import (
    CommonParams,
    Framing,
    Item,
    cell_rng,
    check_depths,
    depth_label,
    make_suite,
    parse_params,
    preset_framing,
    text_digest,
)
from .haystacks import user_haystack
from .prose import PROSE_SOURCE, prose_text
from .sizing import fit
from .text import sentence_ends

DEFAULT_NEEDLE = ("The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a "
                  "sunny day.")
DEFAULT_QUESTION = "What is the best thing to do in San Francisco?"
DEFAULT_ANSWER = "eat a sandwich and sit in Dolores Park on a sunny day"
INSTRUCTION = "Don't give information outside the document or repeat your findings."


class NiahParams(CommonParams):
    haystack_text: str | None = Field(default=None, min_length=1)
    haystack_file: str | None = Field(default=None, min_length=1, description="a UTF-8 text file, read as far "
                                      "as the longest length needs")
    needle: str = Field(default=DEFAULT_NEEDLE, min_length=1)
    question: str = Field(default=DEFAULT_QUESTION, min_length=1)
    answers: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1,
                                                                      validate_default=True)
    depths: list[float] | None = Field(default=None, min_length=1)
    depth_intervals: int = Field(default=5, ge=1, le=1000)
    depth_spacing: Literal["linear", "sigmoid"] = "linear"

    _depths = field_validator("depths")(check_depths)

    @field_validator("haystack_text")
    @classmethod
    def _sentences(cls, v: str | None) -> str | None:
        if v is not None and not sentence_ends(v):
            raise ValueError("haystack_text has no sentence end ('.', '!' or '?') to put a needle after")
        return v

    @field_validator("answers")
    @classmethod
    def _answers(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None and info.data.get("needle", DEFAULT_NEEDLE) != DEFAULT_NEEDLE:
            raise ValueError("a custom needle needs 'answers' (the reference answers to score against)")
        return v

    def depth_list(self) -> list[float]:
        return self.depths if self.depths is not None else depth_grid(self.depth_intervals, self.depth_spacing)


def depth_grid(intervals: int, spacing: str) -> list[float]:
    """``intervals`` depths from 0 to 100; ``sigmoid`` packs them towards both ends, as Kamradt's option does."""
    if intervals == 1:
        return [0.0]
    linear = [100.0 * i / (intervals - 1) for i in range(intervals)]
    if spacing == "linear":
        return [round(x, 3) for x in linear]
    out = []
    for x in linear:
        out.append(x if x in (0.0, 100.0) else round(100.0 / (1.0 + math.exp(-0.1 * (x - 50.0))), 3))
    return sorted(set(out))


def insertion_point(prefix_text: str, depth: float, n_tokens: int, tokenizer: Tokenizer, ids: list[int]) -> int:
    """Character offset for the needle: token ⌊n·depth/100⌋, moved back to the previous sentence end."""
    if depth >= 100:
        return len(prefix_text)
    t = int(n_tokens * depth / 100)
    cut = tokenizer.decode(ids[:t])
    c = len(cut) if prefix_text.startswith(cut) else round(len(prefix_text) * t / max(n_tokens, 1))
    ends = sentence_ends(prefix_text[:c])
    return ends[-1] if ends else 0


def insert(text: str, at: int, needle: str) -> tuple[str, tuple[int, int]]:
    if at <= 0:
        return needle + " " + text, (0, len(needle))
    return text[:at] + " " + needle + text[at:], (at + 1, at + 1 + len(needle))


def _rotated(text: str, rng_start: float, min_chars: int) -> str:
    starts = [0] + [e for e in sentence_ends(text) if e < len(text)]
    start = starts[int(rng_start * len(starts))]
    rotated = (text[start:].lstrip() + " " + text[:start]).strip()
    return " ".join([rotated] * math.ceil(min_chars / max(len(rotated), 1)))


def _fit(needle: str, ids: list[int], length: int, depth: float, framing: Framing, tokenizer: Tokenizer
         ) -> tuple[str, tuple[int, int], int, int]:
    """Cut the encoded haystack so the whole prompt around it and the needle, plus the reserve, fill
    ``length`` tokens."""
    needle_tokens = tokenizer.count(" " + needle)
    fixed = framing.fixed(tokenizer.count)

    def build(n: int) -> tuple[str, tuple[int, int]]:
        prefix = tokenizer.decode(ids[:n])
        return insert(prefix, insertion_point(prefix, depth, n, tokenizer, ids), needle)

    fitted = fit(length, build, lambda v: framing.measure(tokenizer, v[0]),
                 lambda n: n + needle_tokens + fixed, n_max=len(ids), what="niah")
    text, span = fitted.value
    return text, span, tokenizer.count(text), fitted.tokens


@registry.generator("niah", params=NiahParams)
def generate_niah(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    kind = "niah"
    p = parse_params(NiahParams, params, kind)
    answers = p.answers if p.answers is not None else [DEFAULT_ANSWER]
    question = f"{p.question} {INSTRUCTION}"
    framing = preset_framing("kamradt", kind, question, {"retrieval_question": p.question})
    longest = max(p.lengths)
    if p.haystack_text is not None and p.haystack_file is not None:
        raise UserInputError("niah: give haystack_text or haystack_file, not both", field="haystack_file")
    base = user_haystack(p.haystack_text, p.haystack_file, longest + 64) or prose_text(longest + 64, p.seed)
    if not sentence_ends(base):
        raise UserInputError("niah: the haystack has no sentence end ('.', '!' or '?') to put a needle after",
                             field="haystack_file")
    items: list[Item] = []
    for sample in range(p.samples):
        hay = _rotated(base, cell_rng(kind, p.seed, "start", sample).random(), 6 * (longest + 64))
        ids = tokenizer.encode(hay)
        if len(ids) < longest:
            hay = " ".join([hay] * math.ceil(2 * longest / max(len(ids), 1)))
            ids = tokenizer.encode(hay)
        for length in p.lengths:
            for depth in p.depth_list():
                text, span, doc_tokens, total = _fit(p.needle, ids, length, depth, framing, tokenizer)
                items.append(Item(
                    qid=f"{kind}-{length}-{depth_label(depth)}-{sample}", question=question, answers=answers,
                    doc_text=text, spans=[span], length=length, doc_tokens=doc_tokens,
                    question_tokens=total - framing.extra - doc_tokens, depth_target=depth,
                    meta={"sample": sample, **framing.meta()}))
    dump = p.model_dump(mode="json")
    if p.haystack_text is not None:
        dump["haystack_text"] = f"sha256:{text_digest(p.haystack_text)} ({len(p.haystack_text)} chars)"
    if p.haystack_text is None and p.haystack_file is None:
        dump["haystack_source"] = PROSE_SOURCE
    dump["depths"] = p.depth_list()
    return make_suite(kind, "Needle in a haystack (Kamradt)", items, ["subspan_em"], p, tokenizer,
                      params_dump=dump, preset="kamradt")
