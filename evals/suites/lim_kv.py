"""Lost in the Middle key-value retrieval: uuid → uuid pairs as one JSON object; give the gold key's value.

The number of pairs grows until the object fills the length; the gold pair sits at a chosen index
(``gold_indices``, negative counts from the end) or at a depth percent of the pair list (``depths``,
index = round(depth/100 · (pairs − 1))). The object is written as the paper writes it, one pair per line.
One pair is about 45–50 tokens, so lengths below about 3,000 tokens cannot be met to within 2%.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from evals import registry
from evals.domain import Suite
from evals.errors import UserInputError
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
)
from .sizing import TokenCounter, fit
from .text import random_uuid

TEMPLATE = ("Extract the value corresponding to the specified key in the JSON object provided.\n\n"
            'Key: "{key}"\nCorresponding value:')


class LimKvParams(CommonParams):
    depths: list[float] | None = Field(default=None, min_length=1)
    gold_indices: list[int] | None = Field(default=None, min_length=1)

    _depths = field_validator("depths")(check_depths)

    @field_validator("gold_indices")
    @classmethod
    def _one_position(cls, v: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if v is not None and info.data.get("depths") is not None:
            raise ValueError("give either depths or gold_indices, not both")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("gold_indices must not repeat")
        return v


def format_records(records: list[tuple[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The JSON object, one ``"key": "value"`` per line, and each pair's character span."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, (k, v) in enumerate(records):
        start = "{" if i == 0 else " "
        body = f'"{k}": "{v}"'
        end = ",\n" if i != len(records) - 1 else "}"
        spans.append((pos + len(start), pos + len(start) + len(body)))
        chunk = start + body + end
        parts.append(chunk)
        pos += len(chunk)
    return "".join(parts), spans


def gold_index(position: tuple[str, float], count: int) -> int:
    how, value = position
    if how == "depth":
        return round(value / 100 * (count - 1))
    idx = int(value)
    return idx if idx >= 0 else count + idx


def _cell(rng: random.Random, length: int, how: str, value: float, tokenizer: Tokenizer,
          counter: TokenCounter, qid: str, sample: int) -> Item:
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    per_pair = counter(f' "{random_uuid(rng)}": "{random_uuid(rng)}",\n')
    while len(pairs) < length // max(per_pair - 8, 1) + 2:
        k, v = random_uuid(rng), random_uuid(rng)
        if k not in seen and v not in seen:
            seen.update((k, v))
            pairs.append((k, v))
    gold, others = pairs[0], pairs[1:]
    question = TEMPLATE.format(key=gold[0])
    framing = preset_framing("litm", "lim_kv", question, {"key": gold[0]})
    q_tokens = framing.fixed(counter)

    def build(n: int) -> tuple[str, tuple[int, int], int]:
        g = min(max(gold_index((how, value), n), 0), n - 1)
        records = others[: n - 1]
        records.insert(g, gold)
        text, spans = format_records(records)
        return text, spans[g], g

    def measure(built: tuple[str, tuple[int, int], int]) -> int:
        return framing.measure(tokenizer, built[0])

    fitted = fit(length, build, measure, lambda n: q_tokens + n * per_pair, n_max=len(pairs), n_min=1,
                 what="lim_kv")
    text, span, g = fitted.value
    doc_tokens = tokenizer.count(text)
    if how == "index" and gold_index((how, value), fitted.n) != g:
        raise UserInputError(f"lim_kv: gold index {int(value)} does not exist at length {length}, "
                             f"which holds {fitted.n} pairs", field="gold_indices")
    return Item(
        qid=qid, question=question, answers=[gold[1]], doc_text=text, spans=[span], length=length,
        doc_tokens=doc_tokens, question_tokens=fitted.tokens - framing.extra - doc_tokens,
        depth_target=value if how == "depth" else round(100 * g / max(fitted.n - 1, 1), 2),
        meta={"gold_index": g, "num_pairs": fitted.n, "gold_key": gold[0], "sample": sample, **framing.meta()})


@registry.generator("lim_kv", params=LimKvParams)
def generate_lim_kv(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    kind = "lim_kv"
    p = parse_params(LimKvParams, params, kind)
    counter = TokenCounter(tokenizer)
    if p.gold_indices is not None:
        positions = [("index", float(i)) for i in p.gold_indices]
    else:
        positions = [("depth", d) for d in (p.depths or [0.0, 25.0, 50.0, 75.0, 100.0])]
    items: list[Item] = []
    for length in p.lengths:
        for how, value in positions:
            label = depth_label(value) if how == "depth" else f"i{int(value)}"
            for sample in range(p.samples):
                rng = cell_rng(kind, p.seed, length, how, value, sample)
                items.append(_cell(rng, length, how, value, tokenizer, counter,
                                   f"{kind}-{length}-{label}-{sample}", sample))
    return make_suite(kind, "Lost in the Middle key-value retrieval", items, ["best_subspan_em"], p, tokenizer,
                      preset="litm")
