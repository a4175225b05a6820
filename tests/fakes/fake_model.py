"""The one deterministic model of the test fakes: every decision a model makes, in one place.

Two transports put it on the wire and decide nothing themselves: :mod:`tests.fakes.mock_transport`
(``httpx.MockTransport``, in process, for engine unit tests) and :mod:`tests.fakes.openai_server` (a real
HTTP server on 127.0.0.1 with the quirks of real server families). ``tests/test_fake_model.py`` sends the
same requests to both and checks they answer alike.

Tokens
    ``\\s*(?:\\w+|[^\\w\\s])``: each word or punctuation mark with the whitespace before it is one token,
    so joining the tokens gives the text back (trailing whitespace aside). A token's id is the CRC-32 of
    its text. A chat prompt is one role token per message followed by the tokens of its text
    (:func:`prompt_tokens`); a completion is the tokens of its text plus those of each tool call's name
    and arguments (:func:`completion_tokens`); an embedding request costs the tokens of its inputs. A
    ``max_tokens`` budget cuts the answer's tokens (finish reason ``length``, :func:`within_budget`).

Prompt cache
    Cached tokens are the prompt's prefix, in whole blocks of :data:`CACHE_BLOCK` tokens, that an earlier
    prompt to the same model shared (:class:`PrefixCache`).

Window
    A prompt overflows when its tokens plus ``max_tokens`` (1 when not given) exceed the window; the error
    is the one the server family of ``shape`` sends (:func:`overflow`, shapes in :mod:`tests.fakes.shapes`).

Answers (see :func:`answer`)
    The question is what follows the last ``Question:`` in the last user message (up to a line starting
    with ``Answer``), or that whole message when there is no ``Question:``. Every other piece of prompt
    text is the context. The context is split into sentences; the sentence sharing the most words with
    the question (lower-cased, stop words ignored; the first one on a tie) holds the answer, which is the
    text after its first ``": "``, else after its last ``" is "``, else the whole sentence, without a
    trailing full stop. When that sentence shares fewer than :data:`MIN_SHARE` (80 %) of the question's
    words, the answer is ``unanswerable``: a needle about another key ("... for lisbon is: 4418203."
    against a question about oslo, 3 of 4 words) does not answer. The words that count are those up to
    the question's first ``?``: an instruction after it ("Don't give information outside the
    document.") asks nothing.

    "The special magic number for foo is: 1234567." answers "What is the special magic number for foo?"
    with "1234567"; so long-context and retrieval prompts really differ in what they can answer.

Embeddings
    Hashed bag of words: each non-stop word adds ±1 to one of 64 dimensions (CRC-32 picks dimension and
    sign), then the vector is L2-normalised, so texts that share words are closer.

Agent (:func:`agent_move`)
    A request is an agent step when it offers ``tools`` (and the transport supports them), when its system
    prompt describes the ``SEARCH: <query>`` text protocol, or when it holds tool results. The agent
    searches the question; answers once a search or read result answers it; else reads the part named in
    its only result once; else answers ``unanswerable``. Moves go out as native tool calls when tools are
    offered, else as ``SEARCH:`` / ``READ:`` / ``ANSWER:`` lines.

Judge (:func:`judge_verdict`)
    A request whose system prompt starts with "You are an impartial judge" is graded strictly: correct
    when the answer contains a reference answer, faithful when the answer appears in the context; a JSON
    verdict after one sentence of reasoning (``Score: 10`` or ``Score: 1`` on the 1-to-10 scale).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.shapes import OverflowShape, overflow_error

TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])")
WORD_RE = re.compile(r"\w+")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
EMBEDDING_DIM = 64
CACHE_BLOCK = 16
MIN_SHARE = 0.8
UNANSWERABLE = "unanswerable"
_STOP_TEXT = (
    "a an the is are was were be been being am of for to in on at by with from as and or but not no "
    "what which who whom whose when where why how that this these those it its itself there their they "
    "them he she his her we our you your i me my do does did done can could should would will shall may "
    "might must has have had having than then so if into about over under again per any all some such "
    "only own same too very just also question answer context following given according text document "
    "please tell say"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
Messages = list[dict[str, Any]]


# ------------------------------------------------------------------------------------------ tokens
def tokenize(text: str) -> list[str]:
    """Word-piece tokens of ``text``; ``"".join(tokenize(t)) == t.rstrip()``."""
    return TOKEN_RE.findall(text)


def token_id(token: str) -> int:
    return zlib.crc32(token.encode("utf-8"))


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message (a string or a list of ``{"type": "text", "text": ...}`` parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: Messages) -> list[str]:
    """The tokens of a chat prompt: per message a role token, then the tokens of its text."""
    out: list[str] = []
    for m in messages:
        out.append(f"<|{m.get('role', 'user')}|>")
        out.extend(tokenize(message_text(m)))
    return out


def tool_call_tokens(tool_calls: list[dict[str, Any]]) -> int:
    return sum(len(tokenize(c["function"]["name"] + c["function"]["arguments"])) for c in tool_calls)


def completion_tokens(text: str, tool_calls: list[dict[str, Any]] | None = None, reasoning: int = 0) -> int:
    """Completion tokens of a reply: its text, its tool calls and ``reasoning`` tokens before them."""
    return reasoning + len(tokenize(text)) + tool_call_tokens(tool_calls or [])


def embedding_tokens(texts: list[str]) -> int:
    return sum(len(tokenize(t)) for t in texts)


def within_budget(tokens: list[str], budget: int | None, used: int = 0) -> tuple[list[str], str]:
    """``(tokens, finish_reason)``: the answer's tokens cut to what ``budget`` leaves after ``used``."""
    if budget is not None and used + len(tokens) > budget:
        return tokens[:max(0, budget - used)], "length"
    return tokens, "stop"


class PrefixCache:
    """A server's prompt cache: which whole-block prefixes it has seen."""

    def __init__(self) -> None:
        self._blocks: set[int] = set()

    def clear(self) -> None:
        self._blocks.clear()

    def cached(self, tokens: list[str], block: int = CACHE_BLOCK) -> int:
        """Tokens of ``tokens``' prefix that an earlier prompt shared, in whole blocks (then remembered)."""
        if len(self._blocks) > 2_000_000:
            self._blocks.clear()
        chain = 0
        cached = 0
        hit = True
        for i in range(0, len(tokens) - block + 1, block):
            chain = hash((chain, tuple(tokens[i:i + block])))
            if hit and chain in self._blocks:
                cached += block
            else:
                hit = False
            self._blocks.add(chain)
        return cached


def overflow(prompt: int, max_tokens: int | None, window: int | None,
             shape: OverflowShape = "openai") -> tuple[int, Any] | None:
    """``(status, body)`` of the error for a prompt of ``prompt`` tokens that does not fit ``window``,
    or None when it fits (or there is no window)."""
    if not window or prompt + (max_tokens or 1) <= window:
        return None
    return overflow_error(shape, prompt=prompt, max_tokens=max_tokens or 0, window=window)


# ------------------------------------------------------------------------------------------- words
def word_list(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stop words, in order, repeats kept."""
    return [w for w in (m.lower() for m in WORD_RE.findall(text)) if w not in STOP_WORDS]


def words(text: str) -> set[str]:
    return set(word_list(text))


# ----------------------------------------------------------------------------------------- answers
def split_prompt(messages: Messages) -> tuple[str, str]:
    """``(question, context)`` of a chat prompt, as the module docstring describes."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    others = [message_text(m) for i, m in enumerate(messages) if i != last_user]
    if last_user < 0:
        return "", "\n".join(others)
    question, head = split_question(message_text(messages[last_user]))
    return question, "\n".join([*others, head] if head else others)


def split_question(text: str) -> tuple[str, str]:
    """``(question, text before it)`` of one message: the lines after its last ``Question:`` up to one
    starting with ``Answer``, or the whole text when it has no ``Question:``."""
    head, sep, tail = text.rpartition("Question:")
    if not sep:
        return text.strip(), ""
    lines: list[str] = []
    for line in tail.splitlines():
        if line.strip().lower().startswith("answer"):
            break
        lines.append(line)
    return " ".join(s.strip() for s in lines if s.strip()), head


def asked(question: str) -> str:
    """The part of ``question`` whose words must be matched: up to its first ``?`` (an instruction after
    the question, "Don't give information outside the document.", asks nothing), or all of it."""
    head, sep, _ = question.partition("?")
    return head + sep if sep else question


def answer(question: str, context: str) -> str:
    """The extractive answer to ``question`` from ``context`` (``unanswerable`` when nothing matches)."""
    qwords = words(asked(question))
    best, best_score = "", 0
    for sentence in SENTENCE_RE.split(context):
        score = len(qwords & words(sentence))
        if score > best_score:
            best, best_score = sentence.strip(), score
    if best_score == 0 or best_score < MIN_SHARE * len(qwords) - 1e-9:
        return UNANSWERABLE
    if ": " in best:
        value = best.split(": ", 1)[1]
    elif " is " in best:
        value = best.rsplit(" is ", 1)[1]
    else:
        value = best
    value = value.strip().rstrip(".").strip()
    return value or UNANSWERABLE


def answer_messages(messages: Messages) -> str:
    question, context = split_prompt(messages)
    return answer(question, context) if question else UNANSWERABLE


def reasoning_text(messages: Messages) -> str:
    """What a reasoning model thinks before it answers."""
    question, _ = split_prompt(messages)
    return f"The question is: {question} I look for the sentence of the context that shares the most words with it."


# -------------------------------------------------------------------------------------- embeddings
def embed(text: str) -> list[float]:
    """A 64-dimensional L2-normalised hashed bag of words (a fixed unit vector for a text without words)."""
    vec = [0.0] * EMBEDDING_DIM
    for w in word_list(text):
        h = zlib.crc32(w.encode("utf-8"))
        vec[h % EMBEDDING_DIM] += 1.0 if (h >> 16) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0:
        return [1.0] + [0.0] * (EMBEDDING_DIM - 1)
    return [v / norm for v in vec]


# ------------------------------------------------------------------------------------------- agent
Move = tuple[str, Any]  # ("search", query) | ("read", (doc_id, part)) | ("answer", text) | ("text", raw)
TEXT_PROTOCOL = "SEARCH: <query>"


def _question_of(messages: Messages) -> str:
    first_user = next((m for m in messages if m.get("role") == "user"), {})
    return split_question(message_text(first_user))[0]


def observations(messages: Messages) -> list[str]:
    """The tool results an agent has seen: tool messages, or user messages starting ``Result:``."""
    out = []
    for m in messages:
        content = message_text(m)
        if m.get("role") == "tool" or (m.get("role") == "user" and content.startswith("Result:")):
            out.append(content)
    return out


def agent_move(messages: Messages) -> Move:
    """Search the question; answer once a result holds the answer; else read the part named in the only
    result once; else give up with 'unanswerable'."""
    question = _question_of(messages)
    seen = observations(messages)
    found = answer(question, "\n".join(seen))
    if found != UNANSWERABLE:
        return ("answer", found)
    if not seen:
        return ("search", question)
    if len(seen) == 1:
        m = re.search(r"\(document (\S+), part (\d+)\)", seen[0])
        if m:
            return ("read", (m.group(1), int(m.group(2))))
    return ("answer", UNANSWERABLE)


def always_search(messages: Messages) -> Move:
    """An agent that never answers: every step is another search."""
    return ("search", f"magic number attempt {len(observations(messages))}")


def move_as_text(move: Move) -> str:
    """A move in the text protocol."""
    kind, arg = move
    if kind == "text":
        return str(arg)
    if kind == "read":
        return f"I should look closer.\nREAD: {arg[0]} {arg[1]}"
    return f"{kind.upper()}: {arg}"


def tool_call(name: str, arguments: dict[str, Any], n: int) -> dict[str, Any]:
    """A native tool call; ``n`` (the number of messages so far) makes its id unique in a conversation."""
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def move_as_tool_call(move: Move, n: int) -> dict[str, Any] | None:
    """A search or read move as a native tool call; None for an answer (plain text then)."""
    kind, arg = move
    if kind == "search":
        return tool_call("search", {"query": arg}, n)
    if kind == "read":
        return tool_call("read", {"doc_id": arg[0], "part": arg[1]}, n)
    return None


# ------------------------------------------------------------------------------------------- judge
JUDGE_SYSTEM = "You are an impartial judge"


def _normal(text: str) -> str:
    return " ".join(WORD_RE.findall(text.lower()))


def judge_verdict(messages: Messages) -> str:
    """Grade like a strict judge: the answer contains a reference (or, for faithfulness, appears
    in the context)."""
    user = message_text(messages[-1])
    answer_text = user.split("Answer to grade:", 1)[1].split("\n\nReply", 1)[0].strip()
    if user.startswith("Rubric: the answer to grade is faithful"):
        context = user.split("Context:", 1)[1].split("\nQuestion:", 1)[0]
        ok = bool(_normal(answer_text)) and _normal(answer_text) in _normal(context)
        return f'Checked the passages.\n{{"score": {int(ok)}, "rationale": "answer {"" if ok else "not "}found"}}'
    refs = re.findall(r"^- (.*)$", user.split("Reference answers:", 1)[1].split("Answer to grade:", 1)[0], re.M)
    ok = any(_normal(r) and _normal(r) in _normal(answer_text) for r in refs)
    if "scale of 1 to 10" in user:
        return f"Score: {10 if ok else 1}"
    return f'Compared with the references.\n{{"score": {int(ok)}, "rationale": "{"matches" if ok else "differs"}"}}'


# ------------------------------------------------------------------------------------- the reply
Role = Literal["answer", "agent", "judge"]


@dataclass(frozen=True)
class Reply:
    """What the model says to one chat request: text, or tool calls (then the text is empty)."""

    role: Role
    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def is_judge(messages: Messages) -> bool:
    return bool(messages) and messages[0].get("role") == "system" and \
        message_text(messages[0]).startswith(JUDGE_SYSTEM)


def is_agent(messages: Messages, tools: list[dict[str, Any]] | None) -> bool:
    system = message_text(messages[0]) if messages and messages[0].get("role") == "system" else ""
    return bool(tools) or TEXT_PROTOCOL in system or any(m.get("role") == "tool" for m in messages)


def reply(messages: Messages, tools: list[dict[str, Any]] | None = None, *,
          answer: Callable[[Messages], str] = answer_messages,
          agent: Callable[[Messages], Move] = agent_move,
          judge: Callable[[Messages], str] = judge_verdict) -> Reply:
    """The model's reply to a chat request. ``tools`` are the tools offered (None where the transport
    has no native tool calls); ``answer``, ``agent`` and ``judge`` replace a behaviour in a test."""
    if is_judge(messages):
        return Reply("judge", judge(messages))
    if is_agent(messages, tools):
        move = agent(messages)
        if tools:
            call = move_as_tool_call(move, len(messages))
            if call is not None:
                return Reply("agent", "", [call])
            return Reply("agent", move_as_text(move).removeprefix("ANSWER: "))
        return Reply("agent", move_as_text(move))
    return Reply("answer", answer(messages))
