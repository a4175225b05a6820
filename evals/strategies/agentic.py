"""The ``agentic`` strategy: the model searches and reads the question's documents in a loop.

Tools: ``search(query)`` returns the top ``k`` chunks (with ids) of the run's retriever over the
question's documents; ``read(doc_id, part)`` returns one window of ``read_tokens`` tokens of a
document (parts count from 0). The loop ends when the model answers, or at the step budget
(``max_steps`` model calls) or the token budget (``max_tokens_total`` prompt + completion tokens over
all calls, the next prompt's estimate included). On a spent budget the model gets one last call
without tools to answer from what it has seen (``on_budget: force_answer``), or the case ends as
``no_answer`` (``on_budget: no_answer``); either way ``error_class`` is ``budget_exhausted``.

Native tool calling is used when ``tool_mode`` is ``native``, or ``auto`` and the endpoint says it
supports tools; otherwise a plain-text protocol, one action per reply::

    SEARCH: <query>
    READ: <doc_id> <part>
    ANSWER: <answer>
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from evals import registry
from evals.client import ChatResponse
from evals.domain import Document, Outcome, RetrievedChunk
from evals.retrieval.base import RetrieverName
from evals.retrieval.chunking import Chunk, Chunking, token_windows
from evals.strategies.base import CaseContext, EstimateContext, Strategy, StrategyOutput
from evals.strategies.rag import RagParams, overlaps_evidence, retrieval_estimate, retrieve

MAX_LISTED_DOCUMENTS = 200
SYSTEM_NATIVE = (
    "You answer a question about a collection of documents that you cannot see all at once. Use the tools: "
    "search(query) finds the passages that best match a query; read(doc_id, part) shows one part of a "
    "document. Search and read until you have found the answer in the documents, then reply with the answer "
    "alone (a short phrase, no explanation) and no tool call. If the documents do not contain the answer, "
    "reply 'unanswerable'.")
SYSTEM_TEXT = (
    "You answer a question about a collection of documents that you cannot see all at once. In each reply "
    "write exactly one action on its own line, and nothing after it:\n"
    "SEARCH: <query>  - find the passages that best match the query\n"
    "READ: <doc_id> <part>  - show one part of a document (parts count from 0)\n"
    "ANSWER: <answer>  - your final answer: a short phrase, no explanation\n"
    "Search and read until you have found the answer in the documents. If the documents do not contain "
    "the answer, reply ANSWER: unanswerable.")
FORCE = ("You have no searches or reads left. Answer now from what you have seen: reply with the answer "
         "alone (a short phrase), or 'unanswerable'.")
TOOLS = [
    {"type": "function", "function": {
        "name": "search", "description": "Find the passages of the documents that best match a query.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "read", "description": "Show one part of a document; parts count from 0.",
        "parameters": {"type": "object", "properties": {"doc_id": {"type": "string"},
                                                        "part": {"type": "integer", "minimum": 0}},
                       "required": ["doc_id", "part"]}}},
]
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ACTION = re.compile(r"^[\s>*`#\-]*(?:action\s*:\s*)?[*`]*\s*(SEARCH|READ|ANSWER)\b[*`]*\s*([:(]?)\s*(.*)$",
                     re.IGNORECASE | re.MULTILINE)


class AgenticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retriever: RetrieverName = Field(default="bm25", description="how chunks are found")
    retriever_params: dict[str, Any] = Field(default_factory=dict)
    chunk_tokens: int = Field(default=256, ge=16, le=32768)
    overlap_tokens: int = Field(default=32, ge=0)
    title_prefix: bool = False
    chunking: Chunking = "sentence"
    k: int = Field(default=5, ge=1, le=100, description="chunks per search")
    read_tokens: int = Field(default=512, ge=16, le=32768, description="tokens per document part")
    max_steps: int = Field(default=8, ge=1, le=100, description="model calls before the budget is spent")
    max_tokens_total: int | None = Field(default=100_000, ge=1, description="prompt + completion tokens")
    tool_mode: Literal["auto", "native", "text"] = "auto"
    on_budget: Literal["force_answer", "no_answer"] = "force_answer"
    _rag: RagParams | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> AgenticParams:
        self.rag_params()  # validates the retriever and the chunking
        return self

    def rag_params(self) -> RagParams:
        """The retrieval half of the parameters, made once (its retriever is built once with it)."""
        if self._rag is None:
            self._rag = RagParams(retriever=self.retriever, retriever_params=self.retriever_params,
                                  chunk_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens,
                                  title_prefix=self.title_prefix, chunking=self.chunking, k=self.k)
        return self._rag


def parse_action(text: str, doc_ids: list[str]) -> tuple[str, dict[str, Any]] | None:
    """The first ``SEARCH``/``READ``/``ANSWER`` action in a reply, or None."""
    body = _THINK.sub("", text)
    if "</think>" in body.lower():
        body = body[body.lower().rindex("</think>") + len("</think>"):]
    m = _ACTION.search(body)
    if m is None:
        return None
    verb, paren = m.group(1).lower(), m.group(2) == "("
    rest = m.group(3).strip()
    if verb == "answer":
        full = (rest + body[m.end():]).strip(" \t\n`*")
        return "answer", {"answer": full.removesuffix(")").strip() if paren else full}
    rest = (rest.removesuffix(")") if paren else rest).strip(" \t`*\"'")
    if verb == "search":
        return ("search", {"query": rest}) if rest else None
    return "read", _read_arguments(rest, doc_ids)


def _read_arguments(rest: str, doc_ids: list[str]) -> dict[str, Any]:
    """``<doc_id> <part>`` read robustly: the longest known document id in the text, then a number."""
    known = sorted((d for d in doc_ids if d in rest), key=len, reverse=True)
    if known:
        doc = known[0]
        after = rest[rest.index(doc) + len(doc):]
    else:
        parts = re.split(r"[\s,]+", rest, maxsplit=1)
        doc = parts[0].strip("\"'") if parts else ""
        after = parts[1] if len(parts) > 1 else ""
    num = re.search(r"-?\d+", after)
    return {"doc_id": doc, "part": int(num.group(0)) if num else 0}


class _Session:
    """One case's agent loop state: documents, parts, retrieved chunks, steps, token use."""

    def __init__(self, ctx: CaseContext, params: AgenticParams) -> None:
        self.ctx = ctx
        self.params = params
        self.docs: dict[str, Document] = {d.id: d for d in ctx.documents}
        self.parts: dict[str, list[tuple[int, int, int]]] = {}
        self.retrieved: dict[str, RetrievedChunk] = {}
        self.steps: list[dict[str, Any]] = []
        self.used = 0

    def windows(self, doc_id: str) -> list[tuple[int, int, int]]:
        if doc_id not in self.parts:
            size = self.params.read_tokens
            self.parts[doc_id] = token_windows(self.docs[doc_id].text, size, size, self.ctx.chunk_tokenizer)
        return self.parts[doc_id]

    def part_of(self, doc_id: str, offset: int) -> int:
        return next((i for i, (_, e, _) in enumerate(self.windows(doc_id)) if offset < e), 0)

    def keep(self, chunk: Chunk, score: float) -> None:
        if chunk.chunk_id not in self.retrieved:
            self.retrieved[chunk.chunk_id] = RetrievedChunk(
                chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, start=chunk.start, end=chunk.end, score=score,
                rank=len(self.retrieved), text=chunk.text,
                gold=overlaps_evidence(chunk, self.ctx.question.evidence))

    async def search(self, query: str) -> tuple[str, list[str]]:
        if not query.strip():
            return "error: the search query is empty", []
        hits, chunks = await retrieve(self.ctx, self.params.rag_params(), query)
        for c, h in zip(chunks, hits, strict=True):
            self.keep(c, h.score)
        if not chunks:
            return "no passages found", []
        lines = [f"[{c.chunk_id}] (document {c.doc_id}, part {self.part_of(c.doc_id, c.start)})\n{c.text}"
                 for c in chunks]
        return "\n\n".join(lines), [c.chunk_id for c in chunks]

    def read(self, doc_id: Any, part: Any) -> tuple[str, list[str]]:
        doc_id = str(doc_id)
        if doc_id not in self.docs:
            return f"error: unknown document '{doc_id}'", []
        try:
            n = int(part)
        except (TypeError, ValueError):
            return f"error: part must be a number, got {part!r}", []
        windows = self.windows(doc_id)
        if not 0 <= n < len(windows):
            return f"error: document '{doc_id}' has parts 0 to {len(windows) - 1}", []
        start, end, tokens = windows[n]
        doc = self.docs[doc_id]
        chunk = Chunk(chunk_id=f"{doc_id}@part{n}", doc_id=doc_id, doc_index=0, ordinal=n, start=start, end=end,
                      text=doc.text[start:end], tokens=tokens)
        self.keep(chunk, 0.0)
        return f"[document {doc_id}, part {n} of {len(windows)}]\n{chunk.text}", [chunk.chunk_id]

    def catalogue(self) -> str:
        lines = []
        for d in list(self.docs.values())[:MAX_LISTED_DOCUMENTS]:
            title = f" ({d.title})" if d.title else ""
            lines.append(f"- {d.id}{title}: {len(self.windows(d.id))} parts")
        if len(self.docs) > MAX_LISTED_DOCUMENTS:
            lines.append(f"- ... and {len(self.docs) - MAX_LISTED_DOCUMENTS} more documents")
        return "\n".join(lines)

    async def tokens_of(self, resp: ChatResponse, messages: list[dict[str, Any]]) -> tuple[int, int]:
        prompt = resp.usage.prompt_tokens
        if prompt is None:
            prompt = await self.ctx.count(_flatten(messages))
        completion = resp.usage.completion_tokens
        if completion is None:
            completion = await self.ctx.count(resp.text + resp.reasoning)
        return prompt, completion


def _flatten(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") + json.dumps(m.get("tool_calls") or "") for m in messages)


def _arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


@registry.strategy(order=4)
class Agentic(Strategy):
    """Search and read in a loop until the model answers or a budget is spent."""

    name = "agentic"
    retrieval = True
    Params = AgenticParams
    estimate_note = "agentic counted as one search's chunks; every further step resends its history"

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        """One search's worth of chunks over the frame: a lower bound (each step resends the history)."""
        return retrieval_estimate(est, self.params)

    def native(self, ctx: CaseContext) -> bool:
        mode = self.params.tool_mode  # type: ignore[attr-defined]
        return mode == "native" or (mode == "auto" and ctx.endpoint.supports_tools is True)

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        p: AgenticParams = self.params  # type: ignore[assignment]
        s = _Session(ctx, p)
        native = self.native(ctx)
        user = f"Documents:\n{s.catalogue()}\n\nQuestion: {ctx.question.question}"
        messages: list[dict[str, Any]] = self.system(ctx, SYSTEM_NATIVE if native else SYSTEM_TEXT) + [
            {"role": "user", "content": user}]
        exhausted: str | None = None
        calls = 0
        for call in range(p.max_steps + 1):
            calls = call
            if call == p.max_steps:
                exhausted = "steps"
                break
            if p.max_tokens_total is not None and s.used + await ctx.count(_flatten(messages)) > p.max_tokens_total:
                exhausted = "tokens"
                break
            resp = await ctx.llm.chat(messages, role="agent_step", tools=TOOLS if native else None)
            prompt_tokens, completion_tokens = await s.tokens_of(resp, messages)
            s.used += prompt_tokens + completion_tokens
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "tokens": prompt_tokens + completion_tokens}
            answer = await self._act(s, resp, messages, native, call, usage)
            if answer is not None:
                return self._output(s, answer, resp.reasoning, messages, native, None)
        if p.on_budget == "no_answer":
            return self._output(s, "", "", messages, native, exhausted)
        messages.append({"role": "user", "content": FORCE})
        resp = await ctx.llm.chat(messages, role="answer")
        prompt_tokens, completion_tokens = await s.tokens_of(resp, messages)
        s.used += prompt_tokens + completion_tokens
        action = parse_action(resp.text, list(s.docs))
        if action is None:
            final = _THINK.sub("", resp.text).strip()
        else:  # an action other than an answer is no answer
            final = str(action[1]["answer"]) if action[0] == "answer" else ""
        s.steps.append({"step": calls, "tool": "forced_answer",
                        "arguments": {}, "chunk_ids": [], "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens, "tokens": prompt_tokens + completion_tokens})
        return self._output(s, final, resp.reasoning, messages, native, exhausted)

    async def _act(self, s: _Session, resp: ChatResponse, messages: list[dict[str, Any]], native: bool,
                   call: int, usage: dict[str, int]) -> str | None:
        """Run the actions of one reply; the answer when the reply is one, else None."""
        record: dict[str, Any] = {"step": call, "mode": "native" if native else "text"}
        if resp.tool_calls:
            calls: list[dict[str, Any]] = [
                {"id": tc.get("id") or f"call_{call}_{i}", "type": "function",
                 "function": {"name": (tc.get("function") or {}).get("name", ""),
                              "arguments": (tc.get("function") or {}).get("arguments") or "{}"}}
                for i, tc in enumerate(resp.tool_calls)]
            messages.append({"role": "assistant", "content": resp.text or None, "tool_calls": calls})
            for i, tc in enumerate(calls):
                ids: list[str] = []
                name, args = tc["function"]["name"], _arguments(tc["function"]["arguments"])
                if args is None:
                    result, ids, tool = "error: the arguments are not a JSON object", [], "invalid"
                elif name == "search":
                    result, ids = await s.search(str(args.get("query", "")))
                    tool = name
                elif name == "read":
                    result, ids = s.read(args.get("doc_id"), args.get("part", 0))
                    tool = name
                else:
                    result, ids, tool = f"error: unknown tool '{name}'; tools: search, read", [], "invalid"
                s.steps.append({**record, "tool": tool, "arguments": args if args is not None else
                                {"raw": tc["function"]["arguments"]}, "chunk_ids": ids,
                                **(usage if i == 0 else {"tokens": None})})
                messages.append({"role": "tool", "tool_call_id": tc["id"], "content": result})
            return None
        action = parse_action(resp.text, list(s.docs))
        if action is None and native:
            action = ("answer", {"answer": _THINK.sub("", resp.text).strip()})
        messages.append({"role": "assistant", "content": resp.text})
        if action is None:
            s.steps.append({**record, "tool": "invalid", "arguments": {"text": resp.text[:500]}, "chunk_ids": [],
                            **usage})
            messages.append({"role": "user", "content": "Reply with exactly one line: SEARCH: <query>, "
                                                        "READ: <doc_id> <part> or ANSWER: <answer>."})
            return None
        tool, args = action
        if tool == "answer":
            s.steps.append({**record, "tool": "answer", "arguments": args, "chunk_ids": [], **usage})
            return str(args["answer"])
        if tool == "search":
            result, ids = await s.search(args["query"])
        else:
            result, ids = s.read(args["doc_id"], args["part"])
        s.steps.append({**record, "tool": tool, "arguments": args, "chunk_ids": ids, **usage})
        messages.append({"role": "user", "content": f"Result:\n{result}\n\nNext action?"})
        return None

    def _output(self, s: _Session, answer: str, reasoning: str, messages: list[dict[str, Any]], native: bool,
                exhausted: str | None) -> StrategyOutput:
        meta = {"retrieval": True, "agent": {"mode": "native" if native else "text", "tokens_used": s.used,
                                             "calls": len({st["step"] for st in s.steps}),
                                             "budget_exhausted": exhausted}}
        out = StrategyOutput(answer=answer, reasoning=reasoning, prompt=messages,
                             retrieved=list(s.retrieved.values()), steps=s.steps, metadata=meta)
        if exhausted is not None:
            out.error_class = "budget_exhausted"
            out.error_message = (f"the {exhausted} budget was spent (max_steps {s.params.max_steps}, "
                                 f"max_tokens_total {s.params.max_tokens_total}, used {s.used} tokens)")
            if not answer.strip():
                out.outcome = Outcome.no_answer
        return out
