"""Length × depth sweeps over any suite whose questions cite their evidence documents.

For each question, length L and depth D the sweep makes a variant ``<qid>@L<L>@D<D>`` whose ``doc_ids``
are the evidence documents plus distractors (other documents of the corpus, drawn in a fixed order per
question) up to L tokens, the evidence placed as one block at depth D of that list.

Lengths are counted as the sum of the documents' token counts (``tokenizer.count(document.text)``).
The recorded ``depth`` is where the evidence block starts, in tokens, as a share of the other (distractor)
tokens: 0 = before everything, 100 = after everything, so every requested depth can be reached.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from evals.domain import Question, Suite, stable_hash
from evals.errors import UserInputError
from evals.tokens import Tokenizer


def parse_lengths(text: str) -> list[int]:
    """``"1000,4k,32k"`` → ``[1000, 4000, 32000]`` (``k`` = thousand, ``m`` = million)."""
    out = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        number = part[:-1] if scale > 1 else part
        try:
            value = float(number) * scale
        except ValueError:
            raise UserInputError(f"'{part}' is not a number of tokens", field="lengths") from None
        if not value.is_integer() or value <= 0:
            raise UserInputError(f"'{part}' must be a positive whole number of tokens", field="lengths")
        out.append(int(value))
    if not out:
        raise UserInputError("give at least one length", field="lengths")
    return out


def parse_depths(text: str) -> list[float]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            out.append(float(part))
        except ValueError:
            raise UserInputError(f"'{part}' is not a depth between 0 and 100", field="depths") from None
    if not out:
        raise UserInputError("give at least one depth", field="depths")
    return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _grid(lengths: Sequence[int], depths: Sequence[float]) -> tuple[list[int], list[float]]:
    if not lengths:
        raise UserInputError("give at least one length", field="lengths")
    if not depths:
        raise UserInputError("give at least one depth", field="depths")
    for n in lengths:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise UserInputError(f"length {n!r} must be a positive whole number of tokens", field="lengths")
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 <= d <= 100:
            raise UserInputError(f"depth {d!r} must be between 0 and 100", field="depths")
    return list(dict.fromkeys(lengths)), list(dict.fromkeys(float(d) for d in depths))


def _evidence_ids(q: Question) -> list[str]:
    return list(dict.fromkeys(e.doc_id for e in q.evidence))


def sweep(suite: Suite, *, lengths: Sequence[int], depths: Sequence[float], tokenizer: Tokenizer,
          seed: int = 0) -> Suite:
    """Every question × length × depth as its own question; see the module docstring."""
    lengths, depth_grid = _grid(lengths, depths)
    counts = {d.id: tokenizer.count(d.text) for d in suite.documents}
    order = {d.id: i for i, d in enumerate(suite.documents)}
    smallest = min(counts.values(), default=0)
    variants: list[Question] = []
    skipped: list[str] = []
    for q in suite.questions:
        evidence = _evidence_ids(q)
        if not evidence:
            skipped.append(q.id)
            continue
        ev_tokens = sum(counts[e] for e in evidence)
        ev_set = set(evidence)
        pool = [d.id for d in suite.documents if d.id not in ev_set]
        random.Random(stable_hash([seed, q.id])).shuffle(pool)
        for length in lengths:
            if ev_tokens > length:
                raise UserInputError(
                    f"question '{q.id}': its evidence documents take {ev_tokens:,} tokens, more than the "
                    f"length {length:,}; use a larger length or leave this question out", field="lengths")
            chosen, budget = [], length - ev_tokens
            for doc_id in pool:
                if budget < smallest:
                    break
                if counts[doc_id] <= budget:
                    chosen.append(doc_id)
                    budget -= counts[doc_id]
            chosen.sort(key=order.__getitem__)
            for depth in depth_grid:
                variants.append(_variant(q, evidence, chosen, counts, length, depth, ev_tokens,
                                         exhausted=len(chosen) == len(pool)))
    if not variants:
        raise UserInputError("no question cites evidence documents, so there is nothing to sweep",
                             field="questions")
    meta = {**suite.metadata, "sweep": {"lengths": lengths, "depths": depth_grid, "seed": seed,
                                        "tokenizer": tokenizer.name, "skipped": skipped}}
    return Suite(name=suite.name, description=suite.description, documents=suite.documents,
                 questions=variants, default_scorers=suite.default_scorers, metadata=meta)


def _variant(q: Question, evidence: list[str], chosen: list[str], counts: dict[str, int], length: int,
             depth: float, ev_tokens: int, *, exhausted: bool) -> Question:
    prefix = [0]
    for doc_id in chosen:
        prefix.append(prefix[-1] + counts[doc_id])
    other = prefix[-1]
    goal = depth / 100 * other
    k = min(range(len(prefix)), key=lambda i: (abs(prefix[i] - goal), i))
    total = other + ev_tokens
    meta: dict[str, Any] = {
        **q.metadata, "source_question": q.id, "context_length": length, "context_tokens": total,
        "depth": round(prefix[k] / other * 100, 2) if other else 0.0, "depth_target": depth,
        "evidence_tokens": ev_tokens, "evidence_start_tokens": prefix[k],
    }
    if exhausted and total < length:
        meta["capped"] = True
        meta["note"] = (f"the corpus has only {total:,} tokens for this question; asked for {length:,}")
    return q.model_copy(update={"id": f"{q.id}@L{length}@D{_number(depth)}",
                                "doc_ids": chosen[:k] + evidence + chosen[k:], "metadata": meta})
