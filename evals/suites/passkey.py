"""PassKey retrieval and the two rewordings Self-Route used to show that retrieval leans on shared words.

``plain`` asks "What is the pass key?"; ``special_token`` asks for "the special token hidden inside the
texts" (no word in common with the needle); ``larger`` hides two pass keys and asks which is larger.
The needle is the classic "The pass key is 71432. Remember it. 71432 is the pass key." in RULER's
noise haystack (or generated essay prose).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from evals import registry
from evals.domain import Suite
from evals.tokens import Tokenizer

from .base import DepthParams, Item, cell_rng, depth_label, make_suite, parse_params, plain_framing
from .haystacks import essay_haystack, fit_needles, noise_haystack
from .sizing import TokenCounter

TASK = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
        "I will quiz you about the important information there.")
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
QUESTIONS = {
    "plain": "What is the pass key?",
    "special_token": "What is the special token hidden inside the texts?",
    "larger": "Two pass keys are hidden inside the texts. Which of the two pass keys is larger?",
}


class PasskeyParams(DepthParams):
    wording: Literal["plain", "special_token", "larger"] = "plain"
    haystack: Literal["noise", "essay"] = "noise"
    digits: int = Field(default=5, ge=2, le=30)


@registry.generator("passkey", params=PasskeyParams)
def generate_passkey(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    kind = "passkey"
    p = parse_params(PasskeyParams, params, kind)
    counter = TokenCounter(tokenizer)
    question = f"{TASK}\n{QUESTIONS[p.wording]}"
    q_tokens = counter(question)
    essay = essay_haystack(p.seed, max(p.lengths), counter) if p.haystack == "essay" else None
    items: list[Item] = []
    for length in p.lengths:
        hay = essay if essay is not None else noise_haystack(length, counter)
        for depth in p.depths:
            for sample in range(p.samples):
                rng = cell_rng(kind, p.seed, length, depth, sample)
                keys = [str(rng.randint(10 ** (p.digits - 1), 10**p.digits - 1))]
                depths = [depth]
                if p.wording == "larger":
                    while len(keys) < 2:
                        other = str(rng.randint(10 ** (p.digits - 1), 10**p.digits - 1))
                        if other != keys[0]:
                            keys.append(other)
                    depths.append(float(rng.randint(0, 100)))
                needles = [NEEDLE.format(key=k) for k in keys]
                text, spans, doc_tokens, _ = fit_needles(hay, needles, depths, plain_framing(q_tokens), length,
                                                         tokenizer, counter, kind)
                answer = max(keys, key=int)
                items.append(Item(
                    qid=f"{kind}-{length}-{depth_label(depth)}-{sample}", question=question, answers=[answer],
                    doc_text=text, spans=spans, length=length, doc_tokens=doc_tokens, question_tokens=q_tokens,
                    depth_target=depth,
                    meta={"wording": p.wording, "haystack": p.haystack, "pass_keys": keys, "sample": sample}))
    return make_suite(kind, f"PassKey retrieval, {p.wording} wording", items, ["subspan_em"], p, tokenizer)
