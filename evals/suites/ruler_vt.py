"""RULER variable tracking: chains ``VAR A = 12345``, ``VAR B = VAR A``, … hidden line by line in noise.

Each chain has ``num_hops`` hops (``num_hops + 1`` names of five uppercase letters) and its own
five-digit value; its statements go in order at sorted random depths. The question asks which
variables hold the first chain's value; the answer lists all of its names (scored with ``ruler_all``).
"""

from __future__ import annotations

import random
import string
from typing import Any, Literal

from pydantic import Field

from evals import registry
from evals.domain import Question, Suite
from evals.presets import RULER_VT, render
from evals.tokens import Tokenizer

from .base import CommonParams, Framing, Item, cell_rng, make_suite, parse_params, preset_framing
from .haystacks import essay_haystack, fit_needles, noise_haystack
from .sizing import TokenCounter, UnitHaystack

TEMPLATE = ("Memorize and track the chain(s) of variable assignment hidden in the provided text.\n"
            "Question: Find all variables that are assigned the value {query} in the provided text.")
ANSWER_PREFIX = ("Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables "
                 "are assigned the value {query}, they are: ")


class VtParams(CommonParams):
    num_chains: int = Field(default=1, ge=1, le=50)
    num_hops: int = Field(default=4, ge=1, le=100)
    haystack: Literal["noise", "essay"] = "noise"


def chains(rng: random.Random, num_chains: int, num_hops: int) -> tuple[list[list[str]], list[str], list[str]]:
    """Names per chain, each chain's value, and the statements in chain order (chain after chain)."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < num_chains * (num_hops + 1):
        name = "".join(rng.choices(string.ascii_uppercase, k=5))
        if name not in seen:
            seen.add(name)
            names.append(name)
    values: list[str] = []
    while len(values) < num_chains:
        v = str(rng.randint(10000, 99999))
        if v not in values:
            values.append(v)
    per_chain = [names[i * (num_hops + 1):(i + 1) * (num_hops + 1)] for i in range(num_chains)]
    statements = []
    for chain, value in zip(per_chain, values, strict=True):
        statements.append(f"VAR {chain[0]} = {value}")
        statements.extend(f"VAR {chain[j + 1]} = VAR {chain[j]}" for j in range(num_hops))
    return per_chain, values, statements


EXAMPLE_LENGTH = 500
"""RULER builds its one worked example as a 500-token task without an output budget
(variable_tracking.py ``main``: ``sys_vartrack_w_noise_random(max_seq_length=500)``)."""


def _depths(rng: random.Random, num_chains: int, per: int) -> list[float]:
    depths: list[float] = []
    for _ in range(num_chains):
        depths.extend(sorted(round(rng.uniform(0, 100), 2) for _ in range(per)))
    return depths


def _name(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_uppercase, k=5))


def worked_example(p: VtParams, tokenizer: Tokenizer, counter: TokenCounter, rng: random.Random,
                   essay: UnitHaystack | None) -> str:
    """RULER's in-context example: a 500-token task with its answer prefix and answer, then
    ``randomize_icl`` (each answer name replaced by new random letters, ``12345`` by a random value)."""
    names, values, statements = chains(rng, p.num_chains, p.num_hops)
    if essay is not None:
        statements = [s + "." for s in statements]
    stub = Question(id="example", question="example",
                    metadata={"template_vars": {"query": values[0], "num_v": p.num_hops + 1}})
    framing = Framing(lambda d: render(RULER_VT, stub, d).text(), 0)
    hay = essay if essay is not None else noise_haystack(EXAMPLE_LENGTH, counter)
    text, _, _, _ = fit_needles(hay, statements, _depths(rng, p.num_chains, p.num_hops + 1), framing,
                                EXAMPLE_LENGTH, tokenizer, counter, "ruler_vt example")
    filled = render(RULER_VT, stub, text)
    example = filled.user + filled.answer_prefix + " " + " ".join(names[0]) + "\n"
    for name in names[0]:
        example = example.replace(name, _name(rng))
    example = example.replace("12345", str(rng.randint(10000, 99999)))
    return example + "\n"


@registry.generator("ruler_vt", params=VtParams)
def generate_ruler_vt(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    kind = "ruler_vt"
    p = parse_params(VtParams, params, kind)
    counter = TokenCounter(tokenizer)
    essay = essay_haystack(p.seed, max(p.lengths), counter) if p.haystack == "essay" else None
    per = p.num_hops + 1
    example = worked_example(p, tokenizer, counter, cell_rng(kind, p.seed, "example"), essay)
    items: list[Item] = []
    for length in p.lengths:
        hay = essay if essay is not None else noise_haystack(length, counter)
        for sample in range(p.samples):
            rng = cell_rng(kind, p.seed, length, sample)
            names, values, statements = chains(rng, p.num_chains, p.num_hops)
            if essay is not None:  # in prose each statement is a sentence: RULER adds its "."
                statements = [s + "." for s in statements]
            depths = _depths(rng, p.num_chains, per)
            question = TEMPLATE.format(query=values[0])
            framing = preset_framing("ruler", kind, question,
                                     {"query": values[0], "num_v": per, "icl_example": example})
            text, spans, doc_tokens, total = fit_needles(hay, statements, depths, framing, length, tokenizer,
                                                         counter, kind)
            items.append(Item(
                qid=f"{kind}-{length}-{sample}", question=question, answers=names[0], doc_text=text,
                spans=spans[:per], length=length, doc_tokens=doc_tokens,
                question_tokens=total - framing.extra - doc_tokens,
                meta={"value": values[0], "num_chains": p.num_chains, "num_hops": p.num_hops,
                      "haystack": p.haystack, "sample": sample,
                      "answer_prefix": ANSWER_PREFIX.format(num_v=per, query=values[0]), **framing.meta()}))
    return make_suite(kind, f"RULER variable tracking, {p.num_chains} chain(s) of {p.num_hops} hops", items,
                      ["ruler_all"], p, tokenizer, preset="ruler")
