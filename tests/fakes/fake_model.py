"""The deterministic model behind the fake server: word-piece tokens, an extractive answerer, embeddings.

Tokens
    ``\\s*(?:\\w+|[^\\w\\s])``: each word or punctuation mark with the whitespace before it is one token,
    so joining the tokens gives the text back (trailing whitespace aside). A token's id is the CRC-32 of
    its text. A chat prompt is one role token per message followed by the tokens of its text.

Answers (see :func:`answer`)
    The question is what follows the last ``Question:`` in the last user message (up to a line starting
    with ``Answer``), or that whole message when there is no ``Question:``. Every other piece of prompt
    text is the context. The context is split into sentences; the sentence sharing the most words with
    the question (lower-cased, stop words ignored; the first one on a tie) holds the answer, which is the
    text after its first ``": "``, else after its last ``" is "``, else the whole sentence, without a
    trailing full stop. No sentence shares a word with the question: the answer is ``unanswerable``.

    "The special magic number for foo is: 1234567." answers "What is the special magic number for foo?"
    with "1234567"; so long-context and retrieval prompts really differ in what they can answer.

Embeddings
    Hashed bag of words: each non-stop word adds ±1 to one of 64 dimensions (CRC-32 picks dimension and
    sign), then the vector is L2-normalised, so texts that share words are closer.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])")
WORD_RE = re.compile(r"\w+")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
EMBEDDING_DIM = 64
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


def tokenize(text: str) -> list[str]:
    """Word-piece tokens of ``text``; ``"".join(tokenize(t)) == t.rstrip()``."""
    return TOKEN_RE.findall(text)


def token_id(token: str) -> int:
    return zlib.crc32(token.encode("utf-8"))


def word_list(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stop words, in order, repeats kept."""
    return [w for w in (m.lower() for m in WORD_RE.findall(text)) if w not in STOP_WORDS]


def words(text: str) -> set[str]:
    return set(word_list(text))


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message (a string or a list of ``{"type": "text", "text": ...}`` parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: list[dict[str, Any]]) -> list[str]:
    """The tokens of a chat prompt: per message a role token, then the tokens of its text."""
    out: list[str] = []
    for m in messages:
        out.append(f"<|{m.get('role', 'user')}|>")
        out.extend(tokenize(message_text(m)))
    return out


def split_prompt(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """``(question, context)`` of a chat prompt, as the module docstring describes."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    others = [message_text(m) for i, m in enumerate(messages) if i != last_user]
    if last_user < 0:
        return "", "\n".join(others)
    text = message_text(messages[last_user])
    head, sep, tail = text.rpartition("Question:")
    if not sep:
        return text.strip(), "\n".join(others)
    lines: list[str] = []
    for line in tail.splitlines():
        if line.strip().lower().startswith("answer"):
            break
        lines.append(line)
    return " ".join(s.strip() for s in lines if s.strip()), "\n".join([*others, head])


def answer(question: str, context: str) -> str:
    """The extractive answer to ``question`` from ``context`` (``unanswerable`` when nothing matches)."""
    qwords = words(question)
    best, best_score = "", 0
    for sentence in SENTENCE_RE.split(context):
        score = len(qwords & words(sentence))
        if score > best_score:
            best, best_score = sentence.strip(), score
    if best_score == 0:
        return UNANSWERABLE
    if ": " in best:
        value = best.split(": ", 1)[1]
    elif " is " in best:
        value = best.rsplit(" is ", 1)[1]
    else:
        value = best
    value = value.strip().rstrip(".").strip()
    return value or UNANSWERABLE


def answer_messages(messages: list[dict[str, Any]]) -> str:
    question, context = split_prompt(messages)
    return answer(question, context) if question else UNANSWERABLE


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
