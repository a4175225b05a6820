"""RULER's needle-in-a-haystack family: single, multikey, multivalue and multiquery.

Needle: "One of the special magic {numbers|words|uuids} for {key} is: {value}." Haystacks: ``noise``
(RULER's five sentences repeated), ``essay`` (prose cut by words; generated from the seed or the
user's ``haystack_text``) or ``needle`` (distractor needles with other keys). With ``depths`` the first
asked needle goes at each depth and every other needle at a depth drawn from RULER's 40-point grid;
without, all needles take grid depths, as RULER does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from evals import registry
from evals.domain import Suite
from evals.tokens import Tokenizer

from .base import (
    CommonParams,
    Item,
    cell_rng,
    check_depths,
    depth_label,
    make_suite,
    parse_params,
    preset_framing,
    text_digest,
)
from .haystacks import (
    RULER_DEPTHS,
    essay_haystack,
    fit_needles,
    lines_haystack,
    noise_haystack,
    user_haystack,
)
from .prose import PROSE_SOURCE
from .sizing import TokenCounter, UnitHaystack
from .text import random_value

NEEDLE = "One of the special magic {type_v} for {key} is: {value}."
TEMPLATE = ("Some special magic {type_v} are hidden within the provided text. Make sure to memorize it. "
            "I will quiz you about the {type_v} afterwards.\n"
            "What are all the special magic {type_v} for {query} mentioned in the provided text?")
ANSWER_PREFIX = "The special magic {type_v} for {query} mentioned in the provided text are"

ValueType = Literal["number", "word", "uuid"]


class RulerNiahParams(CommonParams):
    haystack: Literal["noise", "essay", "needle"] = "essay"
    key_type: ValueType = "word"
    value_type: ValueType = "number"
    haystack_text: str | None = Field(default=None, min_length=1)
    haystack_file: str | None = Field(default=None, min_length=1, description="a UTF-8 text file for 'essay'")
    depths: list[float] | None = Field(default=None, min_length=1)

    _depths = field_validator("depths")(check_depths)

    @field_validator("haystack_text")
    @classmethod
    def _text_needs_essay(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("haystack", "essay") != "essay":
            raise ValueError("haystack_text is used only with haystack 'essay'")
        if v is not None and not v.split():
            raise ValueError("haystack_text has no words")
        return v

    @field_validator("haystack_file")
    @classmethod
    def _file_needs_essay(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("haystack", "essay") != "essay":
            raise ValueError("haystack_file is used only with haystack 'essay'")
        if v is not None and info.data.get("haystack_text") is not None:
            raise ValueError("give haystack_text or haystack_file, not both")
        return v


class SingleParams(RulerNiahParams):
    haystack: Literal["noise", "essay", "needle"] = "noise"


class MultikeyParams(RulerNiahParams):
    num_keys: int = Field(default=4, ge=2, le=1000)


class MultivalueParams(RulerNiahParams):
    num_values: int = Field(default=4, ge=2, le=100)


class MultiqueryParams(RulerNiahParams):
    num_queries: int = Field(default=4, ge=2, le=100)


def _template(type_v: str, query: str, single: bool) -> tuple[str, str]:
    template, prefix = TEMPLATE, ANSWER_PREFIX
    if single:  # RULER's wording for one expected value
        for old, new in (("Some", "A"), ("are all", "is"), ("are", "is")):
            template, prefix = template.replace(old, new), prefix.replace(old, new)
        type_v = type_v[:-1]
    return template.format(type_v=type_v, query=query), prefix.format(type_v=type_v, query=query)


def _join_keys(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + ", and " + keys[-1]


def _generate(kind: str, p: RulerNiahParams, tokenizer: Tokenizer, *, num_keys: int = 1, num_values: int = 1,
              num_queries: int = 1) -> list[Item]:
    counter = TokenCounter(tokenizer)
    essay = (essay_haystack(p.seed, max(p.lengths), counter,
                            user_haystack(p.haystack_text, p.haystack_file, max(p.lengths) + 64))
             if p.haystack == "essay" else None)
    items: list[Item] = []
    for length in p.lengths:
        for depth in p.depths if p.depths is not None else [None]:
            for sample in range(p.samples):
                rng = cell_rng(kind, p.seed, length, depth, sample)
                qid = f"{kind}-{length}-" + (f"{depth_label(depth)}-" if depth is not None else "") + str(sample)
                items.append(_cell(kind, p, tokenizer, counter, essay, rng, qid, length, depth, sample,
                                   num_keys=max(num_keys, num_queries), num_values=num_values,
                                   num_queries=num_queries))
    return items


def _cell(kind: str, p: RulerNiahParams, tokenizer: Tokenizer, counter: TokenCounter, essay: UnitHaystack | None,
          rng: random.Random, qid: str, length: int, depth: float | None, sample: int, *,
          num_keys: int, num_values: int, num_queries: int) -> Item:
    type_v = p.value_type + "s"
    seen: set[str] = set()
    keys = _unique(p.key_type, num_keys, rng, seen)
    values = [_unique(p.value_type, num_values, rng, seen, keys) for _ in keys]
    guard = keys + [v for vs in values for v in vs]
    needles = [[NEEDLE.format(type_v=type_v, key=k, value=v) for v in vs] for k, vs in zip(keys, values, strict=True)]
    gold = [n for ns in needles[:num_queries] for n in ns]
    others = [n for ns in needles[num_queries:] for n in ns]
    rng.shuffle(gold)
    rng.shuffle(others)
    count = len(gold) + len(others)
    grid = rng.sample(RULER_DEPTHS, min(count, len(RULER_DEPTHS)))
    depths = [float(d) for d in grid + [rng.choice(RULER_DEPTHS) for _ in range(count - len(grid))]]
    if depth is not None:
        depths[0] = depth
    if essay is not None:
        hay = essay
    elif p.haystack == "noise":
        hay = noise_haystack(length, counter)
    else:
        hay = lines_haystack(_distractor(p, type_v, seen, guard), rng, length, counter)
    asked = keys[:num_queries]
    single = num_values * num_queries == 1
    question, prefix = _template(type_v, _join_keys(asked), single)
    framing = preset_framing("ruler", kind, question, {"type_needle_v": type_v[:-1] if single else type_v,
                                                       "query": _join_keys(asked)})
    text, spans, doc_tokens, total = fit_needles(hay, gold + others, depths, framing, length, tokenizer, counter,
                                                 kind)
    return Item(qid=qid, question=question, answers=[v for vs in values[:num_queries] for v in vs],
                doc_text=text, spans=spans[: len(gold)], length=length, doc_tokens=doc_tokens,
                question_tokens=total - framing.extra - doc_tokens, depth_target=depth,
                meta={"haystack": p.haystack, "keys": asked, "num_needles": count, "answer_prefix": prefix,
                      "sample": sample, **framing.meta()})


def _unique(kind: str, count: int, rng: random.Random, seen: set[str], guard: list[str] | None = None
            ) -> list[str]:
    """``count`` new values; with ``guard``, none contains or is contained in a guarded value."""
    out: list[str] = []
    while len(out) < count:
        v = random_value(kind, rng)
        if v in seen or (guard and any(g in v or v in g for g in guard)):
            continue
        seen.add(v)
        out.append(v)
    return out


def _distractor(p: RulerNiahParams, type_v: str, seen: set[str], guard: list[str]
                ) -> Callable[[random.Random], str]:
    def make(rng: random.Random) -> str:
        key = _unique(p.key_type, 1, rng, seen, guard)[0]
        value = _unique(p.value_type, 1, rng, seen, guard)[0]
        return NEEDLE.format(type_v=type_v, key=key, value=value)
    return make


def _dump(p: RulerNiahParams) -> dict[str, Any]:
    data = p.model_dump(mode="json")
    if p.haystack_text is not None:
        data["haystack_text"] = f"sha256:{text_digest(p.haystack_text)} ({len(p.haystack_text)} chars)"
    if p.haystack == "essay" and p.haystack_text is None and p.haystack_file is None:
        data["haystack_source"] = PROSE_SOURCE
    return data


def _suite(kind: str, description: str, p: RulerNiahParams, items: list[Item], scorer: str,
           tokenizer: Tokenizer) -> Suite:
    return make_suite(kind, description, items, [scorer], p, tokenizer, params_dump=_dump(p), preset="ruler")


@registry.generator("ruler_niah_single", params=SingleParams)
def generate_ruler_niah_single(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """One key, one value in the haystack; ask for its value."""
    kind = "ruler_niah_single"
    p = parse_params(SingleParams, params, kind)
    return _suite(kind, "RULER NIAH, one needle", p, _generate(kind, p, tokenizer), "ruler_part", tokenizer)


@registry.generator("ruler_niah_multikey", params=MultikeyParams)
def generate_ruler_niah_multikey(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """``num_keys`` needles with different keys; ask for the value of one."""
    kind = "ruler_niah_multikey"
    p = parse_params(MultikeyParams, params, kind)
    items = _generate(kind, p, tokenizer, num_keys=p.num_keys)
    return _suite(kind, f"RULER NIAH, {p.num_keys} keys, one asked", p, items, "ruler_part", tokenizer)


@registry.generator("ruler_niah_multivalue", params=MultivalueParams)
def generate_ruler_niah_multivalue(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """One key with ``num_values`` values; all must be returned."""
    kind = "ruler_niah_multivalue"
    p = parse_params(MultivalueParams, params, kind)
    items = _generate(kind, p, tokenizer, num_values=p.num_values)
    return _suite(kind, f"RULER NIAH, one key with {p.num_values} values", p, items, "ruler_all", tokenizer)


@registry.generator("ruler_niah_multiquery", params=MultiqueryParams)
def generate_ruler_niah_multiquery(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """``num_queries`` keys asked at once; the values of all of them must be returned."""
    kind = "ruler_niah_multiquery"
    p = parse_params(MultiqueryParams, params, kind)
    items = _generate(kind, p, tokenizer, num_keys=p.num_queries, num_queries=p.num_queries)
    return _suite(kind, f"RULER NIAH, {p.num_queries} keys asked at once", p, items, "ruler_all", tokenizer)
