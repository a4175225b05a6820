"""An in-process model behind ``httpx.MockTransport`` for engine unit tests (no other process).

It answers from its prompt: the value after "is:" in the context sentence that shares the most words
with the question, or "unanswerable". It records every request body so tests can inspect prompts.

It also serves ``/v1/embeddings`` (hashed bag-of-words vectors, so texts sharing words are close),
plays an agent (native tool calls when the request has ``tools``, else the SEARCH/READ/ANSWER text
protocol) and a judge (a JSON verdict, or whatever ``judge`` returns, malformed included).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "an", "is", "of", "for", "what", "which", "to", "in", "and", "one", "are", "was"}


def answer_from_prompt(messages: list[dict[str, Any]]) -> str:
    user = str(messages[-1]["content"])
    question = user.rsplit("Question:", 1)[-1].split("\nAnswer:")[0].strip()
    context = user.rsplit("Question:", 1)[0]
    qwords = set(_WORD.findall(question.lower())) - _STOP
    best, best_overlap = None, 0
    for sentence in re.split(r"(?<=[.!?])\s+|\n", context):
        overlap = len(qwords & set(_WORD.findall(sentence.lower())))
        if overlap > best_overlap and "is:" in sentence:
            best, best_overlap = sentence, overlap
    if best is None or best_overlap < 0.8 * len(qwords):
        return "unanswerable"
    return best.split("is:", 1)[1].strip().rstrip(".")


def sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


EMBED_DIM = 256


def hashed_embedding(text: str, dim: int = EMBED_DIM) -> list[float]:
    """Bag of words hashed into ``dim`` buckets (md5, so stable across processes)."""
    v = np.zeros(dim)
    for w in _WORD.findall(text.lower()):
        if w not in _STOP:
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    return v.tolist()


# ------------------------------------------------------------------------------------------- agent
Move = tuple[str, Any]  # ("search", query) | ("read", (doc_id, part)) | ("answer", text) | ("text", raw)


def _question_of(messages: list[dict[str, Any]]) -> str:
    first_user = next(m for m in messages if m["role"] == "user")
    return str(first_user["content"]).rsplit("Question:", 1)[-1].strip()


def _observations(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for m in messages:
        content = str(m.get("content") or "")
        if m["role"] == "tool" or (m["role"] == "user" and content.startswith("Result:")):
            out.append(content)
    return out


def agent_from_prompt(messages: list[dict[str, Any]]) -> Move:
    """Search the question; answer once a result holds the answer; else read part 0 of the top
    document once; else give up with 'unanswerable'."""
    question = _question_of(messages)
    seen = _observations(messages)
    found = answer_from_prompt([{"content": "\n".join(seen) + f"\nQuestion: {question}\nAnswer:"}])
    if found != "unanswerable":
        return ("answer", found)
    if not seen:
        return ("search", question)
    if len(seen) == 1:
        m = re.search(r"\(document (\S+), part (\d+)\)", seen[0])
        if m:
            return ("read", (m.group(1), int(m.group(2))))
    return ("answer", "unanswerable")


def always_search(messages: list[dict[str, Any]]) -> Move:
    """An agent that never answers: every step is another search."""
    return ("search", f"magic number attempt {len(_observations(messages))}")


def _as_text(move: Move) -> str:
    kind, arg = move
    if kind == "text":
        return str(arg)
    if kind == "read":
        return f"I should look closer.\nREAD: {arg[0]} {arg[1]}"
    return f"{kind.upper()}: {arg}"


def _as_tool_call(move: Move, n: int) -> dict[str, Any] | None:
    kind, arg = move
    if kind == "search":
        args = json.dumps({"query": arg})
    elif kind == "read":
        args = json.dumps({"doc_id": arg[0], "part": arg[1]})
    else:
        return None
    return {"id": f"call_{n}", "type": "function", "function": {"name": kind, "arguments": args}}


# ------------------------------------------------------------------------------------------- judge
def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def judge_from_prompt(messages: list[dict[str, Any]]) -> str:
    """Grade like a strict judge: the answer contains a reference (or, for faithfulness, appears
    in the context)."""
    user = str(messages[-1]["content"])
    answer = user.split("Answer to grade:", 1)[1].split("\n\nReply", 1)[0].strip()
    if user.startswith("Rubric: the answer to grade is faithful"):
        context = user.split("Context:", 1)[1].split("\nQuestion:", 1)[0]
        ok = bool(_normal(answer)) and _normal(answer) in _normal(context)
        return f'Checked the passages.\n{{"score": {int(ok)}, "rationale": "answer {"" if ok else "not "}found"}}'
    refs = re.findall(r"^- (.*)$", user.split("Reference answers:", 1)[1].split("Answer to grade:", 1)[0], re.M)
    ok = any(_normal(r) and _normal(r) in _normal(answer) for r in refs)
    if "scale of 1 to 10" in user:
        return f"Score: {10 if ok else 1}"
    return f'Compared with the references.\n{{"score": {int(ok)}, "rationale": "{"matches" if ok else "differs"}"}}'


class MockModel:
    def __init__(self, *, window: int | None = None, cached: bool = True,
                 answer: Callable[[list[dict[str, Any]]], str] = answer_from_prompt,
                 agent: Callable[[list[dict[str, Any]]], Move] = agent_from_prompt,
                 judge: Callable[[list[dict[str, Any]]], str] = judge_from_prompt,
                 embed_failures: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.embed_requests: list[dict[str, Any]] = []
        self.judge_requests: list[dict[str, Any]] = []
        self.window = window
        self.cached = cached
        self._answer = answer
        self._agent = agent
        self._judge = judge
        self._embed_failures = embed_failures
        self._seen_prefixes: set[str] = set()

    def _embeddings(self, body: dict[str, Any]) -> httpx.Response:
        self.embed_requests.append(body)
        if self._embed_failures > 0:
            self._embed_failures -= 1
            return httpx.Response(503, json={"error": {"message": "embedding worker busy"}},
                                  headers={"retry-after-ms": "1"})
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": hashed_embedding(t)} for i, t in enumerate(texts)]
        words = sum(len(t.split()) for t in texts)
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                         "usage": {"prompt_tokens": words, "total_tokens": words}})

    def _reply(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """The text and tool calls to send back."""
        messages = body["messages"]
        system = str(messages[0]["content"]) if messages[0]["role"] == "system" else ""
        if system.startswith("You are an impartial judge"):
            self.judge_requests.append(body)
            return self._judge(messages), []
        if body.get("tools") or "SEARCH: <query>" in system or any(m["role"] == "tool" for m in messages):
            move = self._agent(messages)
            if body.get("tools"):
                call = _as_tool_call(move, len(messages))
                return ("", [call]) if call else (_as_text(move).removeprefix("ANSWER: "), [])
            return _as_text(move), []
        return self._answer(messages), []

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            return self._embeddings(body)
        self.requests.append(body)
        messages = body["messages"]
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in messages)
        if self.window is not None and prompt_words > self.window:
            return httpx.Response(400, json={"error": {
                "message": f"This model's maximum context length is {self.window} tokens. However, your "
                           f"request has {prompt_words} input tokens.", "code": 400}})
        prefix = str(messages[-1].get("content") or "").rsplit("Question:", 1)[0]
        cached = prompt_words - 20 if (self.cached and prefix in self._seen_prefixes) else 0
        self._seen_prefixes.add(prefix)
        text, tool_calls = self._reply(body)
        usage = {"prompt_tokens": prompt_words, "completion_tokens": len(text.split()) + 5 * len(tool_calls),
                 "prompt_tokens_details": {"cached_tokens": max(cached, 0)}}
        delta: dict[str, Any] = {"content": text} if text else {}
        if tool_calls:
            delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(tool_calls)]
        finish = "tool_calls" if tool_calls else "stop"
        chunks = [{"model": body["model"], "choices": [{"index": 0, "delta": delta}]},
                  {"model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
                  {"model": body["model"], "choices": [], "usage": usage}]
        return httpx.Response(200, content=sse(chunks), headers={"content-type": "text/event-stream"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
