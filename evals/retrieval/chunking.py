"""Split documents into chunks of about N tokens with overlap.

Three ways to cut (``ChunkingParams.chunking``):

- ``sentence`` (default): whole sentences packed up to the chunk size; the overlap steps back over
  whole sentences. A sentence longer than the chunk size is cut at token boundaries.
- ``paragraph``: whole paragraphs (blank-line separated) packed up to the chunk size; a paragraph
  longer than the chunk size falls back to sentences, then to token cuts. The overlap steps back
  over whole paragraphs.
- ``tokens``: fixed windows of exactly ``chunk_tokens`` tokens stepping by ``chunk_tokens −
  overlap_tokens``, blind to sentences (the fixed-size chunks of the Self-Route and Xu et al. papers).

Character offsets into the source document are kept so retrieved chunks can be matched against gold
evidence spans: a chunk's text is ``document.text[start:end]`` (stripped).

Counting: each document is encoded once. A token belongs to the piece (sentence, paragraph, window) in
which it starts, a piece's count is the number of tokens that start in it, and token cuts (the
``tokens`` windows, an over-long sentence) fall where tokens start in that one encoding; so the counts
of a document's pieces add up to its token count exactly. A tokenizer that gives no token offsets (a
server's ``/tokenize``) counts each piece with its own call instead.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from evals import registry
from evals.domain import Document, stable_hash
from evals.tokens import TiktokenTokenizer, Tokenizer, token_starts

# Only where a match ends counts (a piece ends there): the end mark is matched itself rather than looked
# behind for, which cuts at the same places and lets the regex engine skip to the next candidate character.
_SENTENCE_END = re.compile(r"[.!?。][\"')\]]*\s+|\n\s*\n|\n(?=[-*#\d])")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n\s*")
if TYPE_CHECKING:
    Chunking = str
else:  # a registered chunker: sentence, paragraph, tokens, ...
    Chunking = registry.component_name("chunker")
_WORD = re.compile(r"\S+")


class ChunkingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_tokens: int = Field(default=256, ge=16, le=32768)
    overlap_tokens: int = Field(default=32, ge=0)
    title_prefix: bool = False  # prepend the document title to every chunk's indexed text
    chunking: Chunking = "sentence"

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
    # The tokens of the document's one encoding that start inside [start, end). Encoding ``text`` alone
    # may give a token or so more or less: a token that starts before ``end`` can reach past it (cl100k
    # joins the space after a sentence to the next word), and a chunk's first characters can belong to
    # a token that started in the chunk before.
    tokens: int
    title: str = ""

    @property
    def indexed_text(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


def _split_at(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """Character spans of the pieces of ``text`` that end where ``pattern`` matches (the match included)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.end() > pos:
            spans.append((pos, m.end()))
            pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    return spans


class _Counts:
    """A document's token counts. From one encoding of the whole document when the tokenizer gives
    token offsets (:meth:`Tokenizer.offsets`): every token belongs to the piece in which it starts, a
    piece counts the tokens that start in it, and so the counts of pieces that cover the document add
    up to the document's count exactly. Token cuts are made at those same token starts. A tokenizer
    without offsets (a server's) counts each piece with its own call and cuts by decoding."""

    def __init__(self, text: str, tok: Tokenizer) -> None:
        self.text, self.tok = text, tok
        self.starts = token_starts(tok, text) if text else np.zeros(0, dtype=np.int64)

    def counts(self, spans: list[tuple[int, int]]) -> list[int]:
        """The token count of each ``(start, end)`` character span."""
        if self.starts is None:
            return [self.tok.count(self.text[s:e]) for s, e in spans]
        if not spans:
            return []
        bounds = np.searchsorted(self.starts, np.asarray(spans, dtype=np.int64))
        counts: list[int] = (bounds[:, 1] - bounds[:, 0]).tolist()
        return counts

    def cut(self, start: int, end: int, size: int) -> list[tuple[int, int, int]]:
        """Cut text[start:end] into pieces of at most ``size`` tokens; returns (start, end, tokens)."""
        if self.starts is None:
            return _split_long(self.text, start, end, self.tok, size)
        first, last = (int(i) for i in np.searchsorted(self.starts, [start, end]))
        pieces: list[tuple[int, int, int]] = []
        pos, held = start, 0
        for i in range(first, last, size):
            j = min(i + size, last)
            stop = end if j >= last else int(self.starts[j])
            held += j - i
            if stop > pos:  # never an empty piece (several tokens can start in one character)
                pieces.append((pos, stop, held))
                pos, held = stop, 0
        if held and pieces:
            s, _, n = pieces[-1]
            pieces[-1] = (s, end, n + held)
        return pieces


def _split_long(text: str, start: int, end: int, tok: Tokenizer, size: int) -> list[tuple[int, int, int]]:
    """Cut text[start:end] into pieces of at most ``size`` tokens by encoding it and decoding the
    pieces (for a tokenizer without offsets); returns (start, end, tokens)."""
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


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences (whitespace after a sentence belongs to it)."""
    return _split_at(_SENTENCE_END, text)


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Character spans of paragraphs (the blank lines after a paragraph belong to it)."""
    return _split_at(_PARAGRAPH_END, text)


def _keep(counts: _Counts, n: int) -> bool:
    # From one encoding a piece can hold no token start (a token that began before it covers it): it is
    # kept, so that every character stays in a chunk. Counted alone, a piece of no tokens has no text.
    return n > 0 or counts.starts is not None


def _sentence_units(counts: _Counts, s0: int, e0: int, size: int) -> list[tuple[int, int, int]]:
    units: list[tuple[int, int, int]] = []
    spans = [(s + s0, e + s0) for s, e in split_sentences(counts.text[s0:e0])]
    for (s, e), n in zip(spans, counts.counts(spans), strict=True):
        if n > size:
            units.extend(counts.cut(s, e, size))
        elif _keep(counts, n):
            units.append((s, e, n))
    return units


def _units(text: str, params: ChunkingParams, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """The (start, end, tokens) pieces that chunks are packed from."""
    counts = _Counts(text, tok)
    if params.chunking == "sentence":
        return _sentence_units(counts, 0, len(text), params.chunk_tokens)
    units: list[tuple[int, int, int]] = []
    spans = split_paragraphs(text)
    for (s, e), n in zip(spans, counts.counts(spans), strict=True):
        if n > params.chunk_tokens:
            units.extend(_sentence_units(counts, s, e, params.chunk_tokens))
        elif _keep(counts, n):
            units.append((s, e, n))
    return units


def _pack(units: list[tuple[int, int, int]], params: ChunkingParams) -> list[tuple[int, int, int]]:
    """Consecutive units up to the chunk size; the overlap steps back over whole units."""
    spans: list[tuple[int, int, int]] = []
    i = 0
    while i < len(units):
        total = 0
        j = i
        while j < len(units) and (total + units[j][2] <= params.chunk_tokens or j == i):
            total += units[j][2]
            j += 1
        spans.append((units[i][0], units[j - 1][1], total))
        if j >= len(units):
            break
        # step back over trailing units that fit in the overlap, but always move forward
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][2] <= params.overlap_tokens:
            k -= 1
            back += units[k][2]
        i = k
    return spans


def _window_starts(n: int, size: int, step: int) -> list[int]:
    starts = list(range(0, max(n - size, 0) + 1, step))
    if starts[-1] + size < n:
        starts.append(starts[-1] + step)
    return starts


def token_windows(text: str, size: int, step: int, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """Windows of ``size`` tokens every ``step`` tokens as (start, end, tokens) character spans, cut
    where tokens start in one encoding of ``text`` (a character whose bytes two tokens share goes to
    the later window); by decoding for a tokenizer without offsets."""
    starts = token_starts(tok, text) if text else np.zeros(0, dtype=np.int64)
    if starts is None:
        return _decoded_windows(text, size, step, tok)
    n = len(starts)
    if n == 0:
        return []

    def at(i: int) -> int:
        return 0 if i == 0 else len(text) if i >= n else int(starts[i])

    return [(at(s), at(s + size), min(s + size, n) - s) for s in _window_starts(n, size, step)]


def _decoded_windows(text: str, size: int, step: int, tok: Tokenizer) -> list[tuple[int, int, int]]:
    ids = tok.encode(text)
    n = len(ids)
    if n == 0:
        return []
    starts = _window_starts(n, size, step)
    marks = sorted({0, n, *starts, *(min(s + size, n) for s in starts)})
    offset = {0: 0}
    pos = 0
    for a, b in zip(marks, marks[1:], strict=False):
        piece = tok.decode(ids[a:b])
        if "\ufffd" in piece:  # a multi-byte character cut by the slice: decode the whole prefix
            pos = len(tok.decode(ids[:b]))
        else:
            pos += len(piece)
        offset[b] = min(pos, len(text))
    return [(offset[s], offset[min(s + size, n)], min(s + size, n) - s) for s in starts]


@registry.chunker("sentence", order=0)
def sentence_spans(text: str, params: ChunkingParams, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """Whole sentences packed up to the chunk size; the overlap steps back over whole sentences."""
    return _pack(_units(text, params, tok), params)


@registry.chunker("paragraph", order=1)
def paragraph_spans(text: str, params: ChunkingParams, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """Whole paragraphs packed up to the chunk size (long ones fall back to sentences)."""
    return _pack(_units(text, params, tok), params)


@registry.chunker("tokens", order=2)
def token_spans(text: str, params: ChunkingParams, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """Fixed windows of exactly chunk_tokens tokens, blind to sentences."""
    return token_windows(text, params.chunk_tokens, params.chunk_tokens - params.overlap_tokens, tok)


@registry.chunker("words", order=3)
def word_spans(text: str, params: ChunkingParams, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """Windows of chunk_tokens whitespace-separated words (the Self-Route paper's 300-word chunks);
    chunk_tokens and overlap_tokens count words here."""
    return word_windows(text, params.chunk_tokens, params.chunk_tokens - params.overlap_tokens, tok)


def word_windows(text: str, size: int, step: int, tok: Tokenizer) -> list[tuple[int, int, int]]:
    """Windows of ``size`` whitespace-separated words every ``step`` words (the Self-Route paper's
    300-word chunks) as (start, end, tokens) character spans."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    out: list[tuple[int, int, int]] = []
    for i in range(0, len(words), step):
        window = words[i:i + size]
        start, end = window[0][0], window[-1][1]
        out.append((start, end, tok.count(text[start:end])))
        if i + size >= len(words):
            break
    return out


def chunk_document(doc: Document, doc_index: int, params: ChunkingParams, tok: Tokenizer) -> list[Chunk]:
    """A chunker (registered with ``@evals.registry.chunker()``) is ``(text, params, tokenizer) ->
    [(start, end, tokens)]`` character spans; this turns its spans into chunks."""
    text = doc.text
    spans = registry.get("chunker", params.chunking, field_name="chunking").target(text, params, tok)
    title = doc.title if params.title_prefix else ""
    chunks: list[Chunk] = []
    for start, end, total in spans:
        body = text[start:end].strip()
        if not body:
            continue
        chunks.append(Chunk(chunk_id=f"{doc.id}#{len(chunks)}", doc_id=doc.id, doc_index=doc_index,
                            ordinal=len(chunks), start=start, end=end, text=body, tokens=total, title=title))
    return chunks


def chunk_documents(docs: list[Document], params: ChunkingParams, tok: Tokenizer) -> list[Chunk]:
    """Every document's chunks, in order. With tiktoken the documents are chunked on a few threads:
    tiktoken encodes without holding the GIL, so one document is encoded while another is split."""
    if isinstance(tok, TiktokenTokenizer) and len(docs) > 1:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            per_doc = list(pool.map(lambda nd: chunk_document(nd[1], nd[0], params, tok), enumerate(docs)))
    else:
        per_doc = [chunk_document(d, n, params, tok) for n, d in enumerate(docs)]
    return [c for chunks in per_doc for c in chunks]
