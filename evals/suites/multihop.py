"""The ``multihop`` suite: questions over a made-up organisation (see :mod:`evals.suites.orgworld`).

Question types (``metadata.qtype``): ``single_hop``, ``two_hop``, ``aggregation``, ``comparison``,
``unanswerable`` and, when asked for, ``three_hop``. Every question has reference answers (with
aliases), gold evidence (every document needed), ``metadata.hops`` and ``metadata.facts``: pairs of
strings that appear together in an evidence document and in no other document.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evals import registry
from evals.domain import Document, Evidence, Question, Suite
from evals.errors import UserInputError
from evals.suites import mhquestions as mq
from evals.suites.orgworld import OrgWriter, Written, template_words
from evals.tokens import Tokenizer

QType = Literal["single_hop", "two_hop", "three_hop", "aggregation", "comparison", "unanswerable"]
DEFAULT_QTYPES: list[QType] = ["single_hop", "two_hop", "aggregation", "comparison", "unanswerable"]


class MultihopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    target_tokens: int | None = Field(default=None, ge=4_000, le=1_000_000,
                                      description="total tokens of all documents (default 8000)")
    samples: int = Field(default=20, ge=1, le=10_000, description="number of questions")
    qtypes: list[QType] = Field(default_factory=lambda: list(DEFAULT_QTYPES), min_length=1)
    lengths: list[int] | None = Field(default=None, description="sweep the questions over these lengths")
    depths: list[float] | None = Field(default=None, description="evidence depths of the sweep (0..100)")
    name: str | None = None

    @model_validator(mode="after")
    def _sweep(self) -> MultihopParams:
        if self.depths is not None and self.lengths is None:
            raise ValueError("'depths' needs 'lengths'")
        return self

    @property
    def tokens(self) -> int:
        if self.target_tokens is not None:
            return self.target_tokens
        if self.lengths:  # large enough to fill the longest sweep length with distractors
            return min(1_000_000, max(4_000, int(max(self.lengths) * 1.1)))
        return 8_000


def _params(params: dict[str, Any]) -> MultihopParams:
    try:
        return MultihopParams.model_validate(params)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        raise UserInputError(f"multihop: {err['msg']}", field=loc) from None


# ------------------------------------------------------------------------------------------ sizing
def _write_corpus(p: MultihopParams, tokenizer: Tokenizer) -> tuple[list[Written], dict[str, int]]:
    """Documents in stream order until ``target`` tokens, then filler sentences to close the gap."""
    writer = OrgWriter(p.seed, template_words())
    target = p.tokens
    written: list[Written] = []
    counts: dict[str, int] = {}
    total = 0
    for doc in writer.stream():
        n = tokenizer.count(doc.text)
        if total + n > target:
            break
        written.append(doc)
        counts[doc.doc_id] = n
        total += n
    # close the gap with sentences that state nothing new, spread over the documents
    order = list(range(len(written)))
    random.Random(p.seed + 1).shuffle(order)
    open_docs = order
    while open_docs and target - total > 2:
        still_open = []
        for i in open_docs:
            doc = written[i]
            sentence = doc.filler()
            if sentence is None:
                continue
            doc.extra.append(sentence)
            n = tokenizer.count(doc.text)
            if total - counts[doc.doc_id] + n > target:
                doc.extra.pop()
                continue
            total += n - counts[doc.doc_id]
            counts[doc.doc_id] = n
            still_open.append(i)
            if target - total <= 2:
                break
        open_docs = still_open
    return written, counts


# --------------------------------------------------------------------------------------- questions
def _occurs(text: str, needle: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text) is not None


class _Checker:
    """Confirms that a question's facts sit only in its evidence and its answer is in the evidence."""

    def __init__(self, docs: dict[str, str]) -> None:
        self.ids = list(docs)
        self.docs = docs
        self.all = "\x00".join(docs.values())
        self.starts = list(itertools.accumulate((len(t) + 1 for t in docs.values()), initial=0))
        self._having: dict[str, set[str]] = {}
        self._absent: dict[str, bool] = {}

    def having(self, needle: str) -> set[str]:
        """Ids of the documents where ``needle`` occurs as whole words."""
        if needle not in self._having:
            found: set[str] = set()
            pos = self.all.find(needle)
            while pos >= 0:
                end = pos + len(needle)
                if not (pos and self.all[pos - 1].isalnum()) and not (end < len(self.all) and self.all[end].isalnum()):
                    found.add(self.ids[bisect.bisect_right(self.starts, pos) - 1])
                pos = self.all.find(needle, pos + 1)
            self._having[needle] = found
        return self._having[needle]

    def absent(self, term: str) -> bool:
        if term not in self._absent:
            self._absent[term] = re.search(rf"\b{re.escape(term)}\b", self.all, re.IGNORECASE) is None
        return self._absent[term]

    def ok(self, spec: mq.QSpec) -> bool:
        evidence = set(spec.evidence)
        for a, b in spec.facts:
            where = self.having(a) & self.having(b)
            if not where or not where <= evidence:
                return False
        if spec.qtype == "unanswerable":
            return all(self.absent(t) for t in spec.absent)
        if spec.qtype == "aggregation":
            return True
        return any(_occurs(self.docs[d], spec.answers[0]) for d in spec.evidence)


def _questions(world: mq.World, p: MultihopParams, checker: _Checker) -> list[mq.QSpec]:
    rng = random.Random(p.seed + 2)
    makers: dict[str, list[Callable[[mq.World, random.Random], mq.QSpec | None]]] = mq.TEMPLATES
    out: list[mq.QSpec] = []
    seen: set[str] = set()
    active = list(dict.fromkeys(p.qtypes))
    i = 0
    while len(out) < p.samples and active:
        qtype = active[i % len(active)]
        made = None
        for _ in range(40):
            spec = rng.choice(makers[qtype])(world, rng)
            if spec is not None and spec.text not in seen and checker.ok(spec):
                made = spec
                break
        if made is None:
            active.remove(qtype)
            continue
        seen.add(made.text)
        out.append(made)
        i += 1
    return out


# -------------------------------------------------------------------------------------------- entry
@registry.generator("multihop", params=MultihopParams)
def generate_multihop(params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """A synthetic organisation of ``target_tokens`` tokens and ``samples`` questions over it."""
    p = _params(params)
    written, counts = _write_corpus(p, tokenizer)
    world = mq.World.build([w.entity for w in written])
    checker = _Checker({w.doc_id: w.text for w in written})
    specs = _questions(world, p, checker)
    if not specs:
        raise UserInputError("multihop: no question could be made; raise target_tokens", field="target_tokens")
    docs = [Document(id=w.doc_id, title=w.title, text=w.text, metadata={"type": w.doc_id.split("/")[0]})
            for w in written]
    random.Random(p.seed + 3).shuffle(docs)
    questions = [Question(id=f"mh-{i + 1:04d}", question=s.text, answers=s.answers,
                          evidence=[Evidence(doc_id=d) for d in s.evidence], metadata=s.metadata())
                 for i, s in enumerate(specs)]
    kinds: dict[str, int] = {}
    for s in specs:
        kinds[s.qtype] = kinds.get(s.qtype, 0) + 1
    suite = Suite(
        name=p.name or f"multihop-{p.tokens}-s{p.seed}",
        description=f"Questions over a made-up organisation of {len(docs)} documents "
                    f"({sum(counts.values())} {tokenizer.name} tokens).",
        documents=docs, questions=questions,
        metadata={"kind": "multihop", "seed": p.seed, "target_tokens": p.tokens, "tokenizer": tokenizer.name,
                  "tokens": sum(counts.values()), "question_types": kinds,
                  "params": p.model_dump(exclude_none=True)})
    if p.lengths:
        from evals.suites.sweep import sweep

        suite = sweep(suite, lengths=p.lengths, depths=p.depths or [0, 50, 100], tokenizer=tokenizer,
                      seed=p.seed)
    return suite
