"""What every generator shares: common parameters, their validation, seeding, and question assembly."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals import presets
from evals.domain import Document, Evidence, Question, Suite
from evals.errors import UserInputError
from evals.tokens import Tokenizer

from .sizing import Span, depth_percent

MIN_LENGTH = 64
MAX_LENGTH = 4_000_000


class CommonParams(BaseModel):
    """``seed``, ``lengths`` (target context tokens) and ``samples`` (questions per cell)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    lengths: list[int] = Field(default_factory=lambda: [4096], min_length=1)
    samples: int = Field(default=1, ge=1, le=100_000)

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, v: list[int]) -> list[int]:
        for x in v:
            if not MIN_LENGTH <= x <= MAX_LENGTH:
                raise ValueError(f"each length must be between {MIN_LENGTH} and {MAX_LENGTH} tokens, got {x}")
        if len(set(v)) != len(v):
            raise ValueError("lengths must not repeat")
        return v


def check_depths(v: list[float] | None) -> list[float] | None:
    if v is None:
        return v
    for x in v:
        if not 0 <= x <= 100:
            raise ValueError(f"each depth is a percent between 0 and 100, got {x}")
    if len(set(v)) != len(v):
        raise ValueError("depths must not repeat")
    return v


class DepthParams(CommonParams):
    """Common parameters plus ``depths``: percents (0 = start of the context, 100 = its end)."""

    depths: list[float] = Field(default_factory=lambda: [0.0, 25.0, 50.0, 75.0, 100.0], min_length=1)

    _depths = field_validator("depths")(check_depths)


P = TypeVar("P", bound=BaseModel)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _msg(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def parse_params(model: type[P], params: Any, kind: str) -> P:
    """Validate ``params`` with ``model``; a failure names the offending field."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise UserInputError(f"{kind}: parameters must be a mapping, got {type(params).__name__}",
                             field="params")
    try:
        return model.model_validate(params)
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        name = _loc(tuple(first["loc"])) or "params"
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            message = f"{kind}: unknown parameter '{name}' (allowed: {allowed})"
        else:
            message = f"{kind}: {_msg(first['msg'])}"
        if len(errors) > 1:
            message += "; also " + "; ".join(f"{_loc(tuple(x['loc']))}: {_msg(x['msg'])}" for x in errors[1:])
        raise UserInputError(message, field=name) from e


def cell_rng(kind: str, seed: int, *parts: object) -> random.Random:
    """A generator of its own for one cell, so adding a length or depth leaves other questions as they are."""
    return random.Random(":".join(str(p) for p in (kind, seed, *parts)))


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def depth_label(depth: float) -> str:
    return f"d{depth:g}"


SIZING_MARGIN = 64
"""Tokens a preset-sized suite leaves free, the ``margin_tokens`` ``long_context`` keeps by default."""


class Framing:
    """What a generated context is sized with: the prompt around the document and the tokens reserved.

    ``plain`` framing counts document + question (ctxeval's frame); a preset's framing counts the whole
    filled template (instruction, question, worked example, answer prefix), plus the chat-template
    reserve, the task's output budget and the margin, as RULER counts ``prompt + tokens_to_generate``.
    """

    def __init__(self, wrap: Callable[[str], str] | None, extra: int, *, preset: str | None = None,
                 output_tokens: int | None = None, template_vars: dict[str, Any] | None = None) -> None:
        self.wrap = wrap
        self.extra = extra
        self.preset = preset
        self.output_tokens = output_tokens
        self.template_vars = template_vars

    def measure(self, tokenizer: Tokenizer, doc: str) -> int:
        return tokenizer.count(self.wrap(doc) if self.wrap is not None else doc) + self.extra

    def fixed(self, count: Callable[[str], int]) -> int:
        """Tokens of everything but the document (an estimate of the frame's share)."""
        return (count(self.wrap("")) if self.wrap is not None else 0) + self.extra

    def meta(self) -> dict[str, Any]:
        if self.preset is None:
            return {}
        return {"template_vars": self.template_vars or {}, "output_tokens": self.output_tokens,
                "reserved_tokens": self.extra}


def plain_framing(question_tokens: int) -> Framing:
    return Framing(None, question_tokens)


def preset_framing(preset: str, task: str, question: str, template_vars: dict[str, Any]) -> Framing:
    """The framing of ``task`` in ``preset``: the filled prompt around the document, and the reserve."""
    prompt = presets.get_preset(preset).tasks[task]
    stub = Question(id="sizing", question=question, metadata={"template_vars": template_vars})

    def wrap(doc: str) -> str:
        return presets.render(prompt, stub, doc).text()

    out = prompt.max_tokens or 0
    return Framing(wrap, presets.CHAT_RESERVE + out + SIZING_MARGIN, preset=preset, output_tokens=out,
                   template_vars=template_vars)


@dataclass
class Item:
    """One generated question with its own haystack document."""

    qid: str
    question: str
    answers: list[str]
    doc_text: str
    spans: list[Span]  # gold needle spans in ``doc_text``
    length: int
    doc_tokens: int
    question_tokens: int
    depth_target: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def assemble(item: Item, kind: str, tokenizer: Tokenizer) -> tuple[Document, Question]:
    doc_id = f"{item.qid}-ctx"
    depths = [depth_percent(tokenizer, item.doc_text, s, item.doc_tokens) for s, _ in item.spans]
    needles = [item.doc_text[s:e] for s, e in item.spans]
    metadata: dict[str, Any] = {
        "task": kind,
        "context_length": item.length,
        "context_tokens": item.doc_tokens + item.question_tokens,  # the prompt the model reads
        "depth": depths[0] if depths else None,
        "depth_target": item.depth_target,
        "needle": needles[0] if needles else None,
        "needles": needles,
        "needle_depths": depths,
        "tokenizer": tokenizer.name,
        **item.meta,
    }
    evidence = [Evidence(doc_id=doc_id, start=s, end=e) for s, e in item.spans] or [Evidence(doc_id=doc_id)]
    doc = Document(id=doc_id, title=f"Context of {item.qid}", text=item.doc_text,
                   metadata={"tokens": item.doc_tokens, "task": kind})
    question = Question(id=item.qid, question=item.question, answers=item.answers, evidence=evidence,
                        doc_ids=[doc_id], metadata=metadata)
    return doc, question


def make_suite(kind: str, description: str, items: list[Item], scorers: list[str], params: BaseModel,
               tokenizer: Tokenizer, *, params_dump: dict[str, Any] | None = None, preset: str | None = None
               ) -> Suite:
    documents: list[Document] = []
    questions: list[Question] = []
    for item in items:
        doc, q = assemble(item, kind, tokenizer)
        documents.append(doc)
        questions.append(q)
    return Suite(name=kind, description=description, documents=documents, questions=questions,
                 default_scorers=scorers,
                 metadata={"generator": kind, "tokenizer": tokenizer.name,
                           "params": params_dump if params_dump is not None else params.model_dump(mode="json"),
                           **({"preset": preset} if preset is not None else {})})
