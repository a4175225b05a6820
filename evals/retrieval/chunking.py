"""Split documents into chunks of about N tokens with overlap, snapped to sentence ends.

Chunk boundaries fall on sentence ends whenever a sentence fits; a single sentence longer than the
chunk size is cut at token boundaries. Character offsets into the source document are kept so
retrieved chunks can be matched against gold evidence spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evals.domain import Document, stable_hash
from evals.tokens import Tokenizer

_SENTENCE_END = re.compile(r"(?<=[.!?。])[\"')\]]*\s+|\n\s*\n|\n(?=[-*#\d])")


class ChunkingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_tokens: int = Field(default=256, ge=16, le=32768)
    overlap_tokens: int = Field(default=32, ge=0)
    title_prefix: bool = False  # prepend the document title to every chunk's indexed text

    @model_validator(mode="after")
    def _overlap(self) -> ChunkingParams:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self

    @property
    def key(self) -> str:
        return stable_hash(self.model_dump())[:16]


@dataclass(frozen=True)
class Chunk:
    chunk_id: str  # "<doc_id>#<n>"
    doc_id: str
    doc_index: int  # position of the document in the suite
    ordinal: int  # n-th chunk of its document
    start: int  # character offsets in the document text
    end: int
    text: str
    tokens: int
    title: str = ""

    @property
    def indexed_text(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences (whitespace after a sentence belongs to it)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > pos:
            spans.append((pos, m.end()))
            pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    return spans


def _split_long(text: str, start: int, end: int, tok: Tokenizer, size: int) -> list[tuple[int, int, int]]:
    """Cut text[start:end] into pieces of at most ``size`` tokens; returns (start, end, tokens)."""
    ids = tok.encode(text[start:end])
    pieces = []
    offset = start
    for i in range(0, len(ids), size):
        piece = tok.decode(ids[i:i + size])
        # Locate the decoded piece in the source to keep exact offsets (decoding may normalise bytes).
        found = text.find(piece[:32], offset, end) if piece else -1
        p_start = found if found >= 0 else offset
        p_end = min(end, p_start + len(piece)) if i + size < len(ids) else end
        pieces.append((p_start, p_end, len(ids[i:i + size])))
        offset = p_end
    return pieces


def chunk_document(doc: Document, doc_index: int, params: ChunkingParams, tok: Tokenizer) -> list[Chunk]:
    text = doc.text
    units: list[tuple[int, int, int]] = []  # sentence (start, end, tokens)
    for s, e in split_sentences(text):
        n = tok.count(text[s:e])
        if n > params.chunk_tokens:
            units.extend(_split_long(text, s, e, tok, params.chunk_tokens))
        elif n > 0:
            units.append((s, e, n))
    chunks: list[Chunk] = []
    i = 0
    title = doc.title if params.title_prefix else ""
    while i < len(units):
        total = 0
        j = i
        while j < len(units) and (total + units[j][2] <= params.chunk_tokens or j == i):
            total += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(Chunk(chunk_id=f"{doc.id}#{len(chunks)}", doc_id=doc.id, doc_index=doc_index,
                            ordinal=len(chunks), start=start, end=end, text=text[start:end].strip(),
                            tokens=total, title=title))
        if j >= len(units):
            break
        # step back over trailing sentences that fit in the overlap, but always move forward
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][2] <= params.overlap_tokens:
            k -= 1
            back += units[k][2]
        i = k
    return chunks


def chunk_documents(docs: list[Document], params: ChunkingParams, tok: Tokenizer) -> list[Chunk]:
    out: list[Chunk] = []
    for n, d in enumerate(docs):
        out.extend(chunk_document(d, n, params, tok))
    return out
