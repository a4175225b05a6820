"""A case's prompt stored by reference: long message texts live once per run in ``prompt_blob``.

A message whose text is at least :data:`BLOB_MIN_CHARS` long is stored as ``content_parts``: inline
texts and references ``{"blob": sha256, "chars": n}``. The shared part of a long-context prompt (the
rendered documents, the same for every question over the same documents) is found in the text and
stored once; the question frame around it stays inline, so a case costs a few hundred bytes however
long its context. Any other long text is stored whole by its hash (identical texts once). Reading
joins the parts back into exactly the text that was sent.
"""

from __future__ import annotations

import hashlib
from typing import Any

BLOB_MIN_CHARS = 4096
_SLICE = 1 << 20


def sha256_text(text: str) -> str:
    """sha256 of the UTF-8 text, encoded a slice at a time (no second copy of a long text)."""
    h = hashlib.sha256()
    for i in range(0, len(text), _SLICE):
        h.update(text[i:i + _SLICE].encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def split_messages(messages: list[dict[str, Any]], shared: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]],
                                                                                          dict[str, str]]:
    """Messages with long texts replaced by parts, and the blobs they refer to (sha256 → text).

    ``shared`` are texts likely to recur across cases (the rendered documents); the longest one
    found in a message is cut out as its own blob."""
    out: list[dict[str, Any]] = []
    blobs: dict[str, str] = {}

    def ref(text: str) -> dict[str, Any]:
        digest = sha256_text(text)
        blobs.setdefault(digest, text)
        return {"blob": digest, "chars": len(text)}

    candidates = sorted((s for s in shared if len(s) >= BLOB_MIN_CHARS), key=len, reverse=True)
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str) or len(content) < BLOB_MIN_CHARS:
            out.append(message)
            continue
        parts: list[dict[str, Any]] = []
        for block in candidates:
            at = content.find(block)
            if at >= 0:
                head, tail = content[:at], content[at + len(block):]
                parts = ([{"text": head}] if head else []) + [ref(block)] + ([{"text": tail}] if tail else [])
                break
        if not parts:
            parts = [ref(content)]
        rest = {k: v for k, v in message.items() if k != "content"}
        out.append({**rest, "content_parts": parts})
    return out, blobs


def blob_hashes(messages: list[dict[str, Any]]) -> set[str]:
    return {p["blob"] for m in messages for p in m.get("content_parts", ()) if "blob" in p}


def join_messages(messages: list[dict[str, Any]], blobs: dict[str, str]) -> list[dict[str, Any]]:
    """The messages exactly as sent: every ``content_parts`` joined back into ``content``."""
    out = []
    for message in messages:
        parts = message.get("content_parts")
        if parts is None:
            out.append(message)
            continue
        text = "".join(p["text"] if "text" in p else blobs[p["blob"]] for p in parts)
        out.append({**{k: v for k, v in message.items() if k != "content_parts"}, "content": text})
    return out
