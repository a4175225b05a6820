"""Chunking modes, dense and hybrid retrieval, rank fusion, and embeddings computed once per corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals.domain import Document, Outcome, StrategySpec
from evals.embeddings import EmbeddingSettings, EndpointEmbedder, LocalEmbedder, make_embedder
from evals.errors import UserInputError
from evals.retrieval.base import IndexCache, RetrievalEnv, build_retriever
from evals.retrieval.chunking import ChunkingParams, chunk_document
from evals.retrieval.hybrid import ranks, reciprocal_rank_fusion
from evals.strategies import build_strategy
from evals.tokens import local_tokenizer
from tests.fakes.mock_transport import MockModel
from tests.retrieval_suite import endpoint, make_suite, run_cases

TOK = local_tokenizer("cl100k")
SMALL = {"chunk_tokens": 48, "overlap_tokens": 0}


# ------------------------------------------------------------------------------------------ fusion
def test_rrf_matches_a_hand_computed_ranking():
    bm25 = np.array([3.0, 1.0, 2.0, -np.inf])  # chunk 3 shares no term with the query
    dense = np.array([0.1, 0.9, 0.5, 0.2])
    fused = reciprocal_rank_fusion([bm25, dense], [1.0, 1.0], k_rrf=60)
    expected = [1 / 61 + 1 / 64, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62, 1 / 63]
    assert fused == pytest.approx(expected)
    assert list(np.argsort(-fused)) == [1, 2, 0, 3]
    weighted = reciprocal_rank_fusion([bm25, dense], [2.0, 1.0], k_rrf=60)
    assert weighted == pytest.approx([2 / 61 + 1 / 64, 2 / 63 + 1 / 61, 2 / 62 + 1 / 62, 1 / 63])
    assert list(np.argsort(-weighted)) == [0, 2, 1, 3]


def test_rrf_ranks_only_among_the_candidates():
    bm25 = np.array([3.0, 1.0, 2.0, -np.inf])
    dense = np.array([0.1, 0.9, 0.5, 0.2])
    mask = np.array([True, True, False, True])
    assert list(ranks(dense, mask)) == [3, 1, 0, 2]
    fused = reciprocal_rank_fusion([bm25, dense], [1.0, 1.0], k_rrf=60, mask=mask)
    assert fused[:2] == pytest.approx([1 / 61 + 1 / 63, 1 / 62 + 1 / 61])
    assert fused[3] == pytest.approx(1 / 62) and fused[2] == -np.inf


# ---------------------------------------------------------------------------------------- chunking
def test_paragraph_chunks_start_at_paragraph_boundaries():
    paras = [f"Paragraph {i} talks about topic {i}. " * 3 for i in range(6)]
    text = "\n\n".join(paras)
    doc = Document(id="p", text=text)
    chunks = chunk_document(doc, 0, ChunkingParams(chunk_tokens=48, overlap_tokens=0, chunking="paragraph"), TOK)
    starts = {text.index(p) for p in paras}
    assert len(chunks) > 1 and all(c.start in starts for c in chunks)
    assert all(c.text == text[c.start:c.end].strip() for c in chunks)
    sentence = chunk_document(doc, 0, ChunkingParams(chunk_tokens=48, overlap_tokens=0), TOK)
    assert any(c.start not in starts for c in sentence)  # sentence packing ignores paragraphs


def test_token_windows_have_exact_sizes_and_stride():
    text = "Ünïcode wörds and plain words mixed together, again and again. " * 40
    doc = Document(id="t", text=text)
    chunks = chunk_document(doc, 0, ChunkingParams(chunk_tokens=50, overlap_tokens=10, chunking="tokens"), TOK)
    total = TOK.count(text)
    assert len(chunks) == math.ceil((total - 50) / 40) + 1
    assert all(c.tokens == 50 for c in chunks[:-1]) and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert TOK.count(text[b.start:a.end]) == 10  # the overlap is exactly 10 tokens
    assert all(TOK.count(text[c.start:c.end]) == c.tokens for c in chunks)


UNICODE = ("Ünïcode wörds, 日本語の文章です。 Emoji 😀👩‍👩‍👧 and flags 🇫🇷🇩🇪 split across tokens! "
           "Combining e\u0301 marks; a long word: " + "x" * 120 + ". Short one.\n\n- a list item\n"
           "\n中文句子没有空格。再来一句。 The end? Yes.\n\n")
TEXTS = {"ascii": "The harbour master counts ships. Boats leave before dawn.\n\nA new paragraph here. " * 12,
         "unicode": UNICODE * 6,
         "long_sentence": "word " * 400 + "end.",
         "emoji": "😀🇫🇷👩‍👩‍👧🐍" * 60}
MODES = ("sentence", "paragraph", "tokens")


class NoOffsets:
    """A tokenizer that gives no token offsets (as a server's): chunking counts piece by piece."""

    def __init__(self, tok) -> None:
        self.tok, self.name, self.counted = tok, "no-offsets", []

    def encode(self, text):
        return self.tok.encode(text)

    def decode(self, ids):
        return self.tok.decode(ids)

    def count(self, text):
        self.counted.append(text)
        return self.tok.count(text)


@pytest.fixture(scope="module")
def deepseek():
    return local_tokenizer("deepseek-v4")


def test_tiktoken_offsets_are_where_its_tokens_start():
    from evals.tokens import token_starts

    for text in TEXTS.values():
        ids = TOK.encode(text)
        _, expected = TOK._enc.decode_with_offsets(ids)  # tiktoken's own per-token loop
        assert TOK.offsets(text) == expected and len(expected) == TOK.count(text)
        assert token_starts(TOK, text).tolist() == expected
    assert TOK.offsets("") == []


def test_offsets_are_inside_the_text_and_non_decreasing(deepseek):
    for tok in (TOK, deepseek):
        for text in TEXTS.values():
            starts = tok.offsets(text)
            assert len(starts) == tok.count(text) and starts[0] == 0
            assert all(0 <= a <= b < len(text) for a, b in zip(starts, starts[1:], strict=False))


def test_surrogates_are_counted_from_one_encoding_or_piece_by_piece():
    """A lone surrogate is one character and, replaced by tiktoken, three bytes as U+FFFD: one encoding
    still serves. A surrogate pair (two characters that tiktoken joins into one emoji) gives no offsets,
    and the pieces are counted one by one."""
    params = ChunkingParams(chunk_tokens=16, overlap_tokens=0)
    lone, pair = "Lone \udc80 surrogate. Next one. " * 20, "Pair \ud83d\ude00 here. Next one. " * 20
    assert len(TOK.offsets(lone)) == TOK.count(lone) and TOK.offsets(pair) is None
    for text in (lone, pair):
        chunks = chunk_document(Document(id="s", text=text), 0, params, TOK)
        assert all(c.text == text[c.start:c.end].strip() for c in chunks)
    assert sum(c.tokens for c in chunk_document(Document(id="s", text=lone), 0, params, TOK)) == TOK.count(lone)


def test_a_server_tokenizer_gives_no_offsets():
    from evals.tokens import ServerTokenizer

    tok = ServerTokenizer("http://127.0.0.1:9/v1", "m")
    try:
        assert tok.offsets("any text") is None
    finally:
        tok.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(TEXTS))
def test_piece_counts_add_up_to_the_document_count(mode, name, deepseek):
    """The pieces chunks are packed from cover the document, and every token of its one encoding is
    counted in exactly one of them: their counts add up to the document's count. Without overlap the
    chunks are those pieces packed, less the pieces of whitespace alone (no text to index)."""
    from evals.retrieval.chunking import _units, token_windows

    text = TEXTS[name]
    params = ChunkingParams(chunk_tokens=16, overlap_tokens=0, chunking=mode)
    for tok in (TOK, deepseek):
        pieces = token_windows(text, 16, 16, tok) if mode == "tokens" else _units(text, params, tok)
        assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))  # no gap, no overlap
        assert sum(n for _, _, n in pieces) == tok.count(text), (tok.name, mode, name)
        assert all(n <= 16 for _, _, n in pieces)
        chunks = chunk_document(Document(id="u", text=text), 0, params, tok)
        blank = sum(n for s, e, n in pieces if not text[s:e].strip())
        assert sum(c.tokens for c in chunks) == tok.count(text) - blank
        assert all(0 < c.tokens <= 16 for c in chunks)
        assert all(a.end <= b.start and not text[a.end:b.start].strip()
                   for a, b in zip(chunks, chunks[1:], strict=False))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(TEXTS))
def test_chunk_text_is_the_document_text_between_its_offsets(mode, name, deepseek):
    text = TEXTS[name]
    doc = Document(id="u", title="Title", text=text)
    for tok in (TOK, deepseek, NoOffsets(TOK)):
        for size, overlap in ((16, 0), (24, 8), (64, 16)):
            params = ChunkingParams(chunk_tokens=size, overlap_tokens=overlap, chunking=mode, title_prefix=True)
            chunks = chunk_document(doc, 0, params, tok)
            assert chunks and not text[:chunks[0].start].strip() and not text[chunks[-1].end:].strip()
            assert all(c.text == text[c.start:c.end].strip() and c.text for c in chunks)
            assert all(c.indexed_text == f"Title\n{c.text}" for c in chunks)
            assert [c.ordinal for c in chunks] == list(range(len(chunks)))
            # each chunk starts after the one before, at or before its end (overlap) or after blank text
            assert all(a.start < b.start and (b.start <= a.end or not text[a.end:b.start].strip())
                       for a, b in zip(chunks, chunks[1:], strict=False))
            assert all(c.tokens <= size for c in chunks)


def test_one_encoding_per_document_and_cuts_at_its_token_starts():
    text = TEXTS["long_sentence"]
    calls = []

    class Tracking(NoOffsets):
        def offsets(self, text):
            calls.append(len(text))
            return self.tok.offsets(text)

    tok = Tracking(TOK)
    chunks = chunk_document(Document(id="l", text=text), 0, ChunkingParams(chunk_tokens=50, overlap_tokens=0), tok)
    assert calls == [len(text)] and tok.counted == []  # one encoding, no per-piece counting
    starts = TOK.offsets(text)
    assert [c.tokens for c in chunks] == [50] * 8 + [TOK.count(text) - 400]
    assert [c.start for c in chunks[1:]] == [starts[50 * i] for i in range(1, 9)]


def test_without_offsets_each_piece_is_counted_alone():
    """The fallback is the old rule: each sentence is counted with its own call, so a sentence's count
    includes its trailing space as a token of its own, and the counts need not add up."""
    text = TEXTS["ascii"]
    tok = NoOffsets(TOK)
    chunks = chunk_document(Document(id="a", text=text), 0, ChunkingParams(chunk_tokens=48, overlap_tokens=0), tok)
    from evals.retrieval.chunking import split_sentences

    assert tok.counted == [text[s:e] for s, e in split_sentences(text)]
    assert all(c.tokens == sum(TOK.count(text[s:e]) for s, e in split_sentences(text) if c.start <= s < c.end)
               for c in chunks)
    one_pass = chunk_document(Document(id="a", text=text), 0, ChunkingParams(chunk_tokens=48, overlap_tokens=0), TOK)
    assert sum(c.tokens for c in one_pass) == TOK.count(text) < sum(c.tokens for c in chunks)


def test_sentence_ends_are_where_the_lookbehind_rule_put_them():
    """The sentence-end regex matches the end mark itself (faster) instead of looking behind for it:
    the pieces are the same as with the lookbehind form, on random strings of the characters it reads."""
    import random
    import re

    from evals.retrieval.chunking import split_sentences

    lookbehind = re.compile(r"(?<=[.!?。])[\"')\]]*\s+|\n\s*\n|\n(?=[-*#\d])")
    alphabet = list(".!?。\"')] \n\t\r-*#1ab\u3000")
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        pos, expected = 0, []
        for m in lookbehind.finditer(text):
            if m.end() > pos:
                expected.append((pos, m.end()))
                pos = m.end()
        if pos < len(text):
            expected.append((pos, len(text)))
        assert split_sentences(text) == expected, text


def test_documents_chunked_on_threads_come_in_order():
    from evals.retrieval.chunking import chunk_documents

    docs = [Document(id=f"d{i}", text=TEXTS[name] * (i + 1)) for i, name in enumerate(TEXTS)] * 3
    params = ChunkingParams(chunk_tokens=32, overlap_tokens=8)
    threaded = chunk_documents(docs, params, TOK)
    one_by_one = [c for n, d in enumerate(docs) for c in chunk_document(d, n, params, TOK)]
    assert threaded == one_by_one


async def test_title_prefix_is_indexed_and_shown_in_the_prompt():
    suite, model = make_suite(), MockModel()
    docs = [d.model_copy(update={"title": f"Almanac volume {d.id}"}) for d in suite.documents]
    found = {}
    for prefix in (False, True):
        index = await IndexCache().get(docs, ChunkingParams(title_prefix=prefix), build_retriever("bm25"), TOK,
                                       RetrievalEnv())
        found[prefix] = [(c.doc_id, score) for c, score in await index.search("almanac d3", 1, RetrievalEnv())]
    assert found[True][0][0] == "d3" and found[True][0][1] > 0
    assert found[False][0][1] == 0.0  # only the titles say "almanac d3"
    strategies = [StrategySpec(name="rag", params={**SMALL, "k": 1, "title_prefix": True}, label="titled")]
    results = await run_cases(suite, endpoint(), strategies, model)
    assert "[Chunk d2#" in results[("q1", "titled")].prompt[-1]["content"]
    assert "] Doc 2\n" in results[("q1", "titled")].prompt[-1]["content"]


def test_bad_retriever_settings_name_the_field():
    with pytest.raises(UserInputError, match="unknown retriever 'faiss'"):
        build_strategy(StrategySpec(name="rag", params={"retriever": "faiss"}))
    with pytest.raises(UserInputError, match="k_rrf"):
        build_strategy(StrategySpec(name="rag", params={"retriever": "hybrid", "retriever_params": {"k_rrf": -1}}))
    with pytest.raises(UserInputError, match="chunking"):
        build_strategy(StrategySpec(name="rag", params={"chunking": "pages"}), index=0)


# ------------------------------------------------------------------------------------------- dense
async def test_dense_retrieval_finds_the_relevant_chunk():
    # Chunks of 32 tokens: about two sentences around a needle. With 48 the fake model's hashed bag of
    # words finds the lisbon needle only where it happens to start a chunk (it did when each sentence
    # was counted alone, its trailing space one token more; counted from one encoding, six sentences
    # fit instead of five and the needle ends a chunk); up to 32 it is found wherever it falls.
    small = {**SMALL, "chunk_tokens": 32}
    suite, model = make_suite(), MockModel()
    ep = endpoint(embedding_model="hash-emb")
    strategies = [StrategySpec(name="rag", params={**small, "retriever": "dense", "k": 2}, label="dense"),
                  StrategySpec(name="rag", params={**small, "retriever": "hybrid", "k": 2}, label="hybrid")]
    results = await run_cases(suite, ep, strategies, model, scorers=("exact_match",))
    for key in ("dense", "hybrid"):
        for qid, doc in (("q1", "d2"), ("q2", "d3")):
            r = results[(qid, key)]
            assert r.retrieved[0].doc_id == doc and r.retrieved[0].gold, (key, qid)
            assert r.scores["exact_match"] == 1.0 and r.scores["retrieval_recall"] == 1.0
            assert r.metadata["embedder"] == "endpoint:http://127.0.0.1:9:hash-emb"
    assert {b["model"] for b in model.embed_requests} == {"hash-emb"}  # derived from embedding_model
    dense = results[("q1", "dense")].retrieved
    assert dense[0].score > dense[1].score and -1.0 <= dense[1].score <= 1.0  # cosine


async def test_embeddings_are_computed_once_per_corpus_across_questions_and_runs(tmp_path):
    suite, model = make_suite(), MockModel()
    embedder = EndpointEmbedder(endpoint(), model="hash-emb", transport=model.transport, batch_size=8,
                                cache_dir=tmp_path)
    strategies = [StrategySpec(name="rag", params={**SMALL, "retriever": "dense"}, label="dense"),
                  StrategySpec(name="rag", params={**SMALL, "retriever": "hybrid"}, label="hybrid")]
    first = await run_cases(suite, endpoint(), strategies, model, embedder=embedder)
    corpus = [b for b in model.embed_requests if len(b["input"]) > 1 or "magic" not in b["input"][0]]
    queries = [b["input"][0] for b in model.embed_requests if b not in corpus]
    chunk_count = sum(len(b["input"]) for b in corpus)
    assert len(corpus) == math.ceil(chunk_count / 8)  # one pass over the corpus, in batches of 8
    assert sorted(queries) == sorted(q.question for q in suite.questions)  # each question embedded once
    assert all(r.outcome == Outcome.ok for r in first.values())
    # a second run in this process (fresh index cache, same embedder): nothing is embedded again
    before = len(model.embed_requests)
    await run_cases(suite, endpoint(), strategies, model, embedder=embedder)
    assert len(model.embed_requests) == before
    # a new process: the corpus comes from the .npy cache, only the queries are embedded
    assert len(list(tmp_path.glob("*.npy"))) == 1
    later = MockModel()
    fresh = EndpointEmbedder(endpoint(), model="hash-emb", transport=later.transport, batch_size=8,
                             cache_dir=tmp_path)
    again = await run_cases(suite, endpoint(), strategies, later, embedder=fresh)
    assert all(len(b["input"]) == 1 for b in later.embed_requests)
    assert sorted(b["input"][0] for b in later.embed_requests) == sorted(queries)
    assert {k: [c.chunk_id for c in r.retrieved] for k, r in again.items()} == \
        {k: [c.chunk_id for c in r.retrieved] for k, r in first.items()}
    await embedder.aclose()
    await fresh.aclose()


async def test_a_failing_embedding_endpoint_is_retried_then_becomes_a_case_error():
    suite = make_suite()
    flaky = MockModel(embed_failures=1)
    params = {**SMALL, "retriever": "dense"}
    ok = await run_cases(suite, endpoint(embedding_model="e"), [StrategySpec(name="rag", params=params, label="d")],
                         flaky)
    assert all(r.outcome == Outcome.ok for r in ok.values())
    down = MockModel(embed_failures=100)
    results = await run_cases(suite, endpoint(embedding_model="e", max_retries=0),
                              [StrategySpec(name="rag", params=params, label="d"), StrategySpec(name="long_context")],
                              down)
    assert results[("q1", "d")].outcome == Outcome.error and results[("q1", "d")].error_class == "server_error"
    assert results[("q1", "long_context")].outcome == Outcome.ok  # the rest of the run goes on


async def test_dense_without_any_embedder_names_what_to_set():
    env = RetrievalEnv()
    retriever = build_retriever("dense")
    from evals.retrieval.chunking import chunk_documents

    with pytest.raises(UserInputError, match="embedding_model"):
        await IndexCache().get(make_suite().documents, ChunkingParams(), retriever, TOK, env)
    assert chunk_documents(make_suite().documents, ChunkingParams(), TOK)


async def test_make_embedder_picks_the_source():
    with_model = endpoint(embedding_model="e5")
    separate = endpoint(name="emb", base_url="http://127.0.0.1:8/v1", model="bge")
    made = [make_embedder(None, [endpoint(), with_model]),
            make_embedder(EmbeddingSettings(endpoint=separate), [with_model]),
            make_embedder(EmbeddingSettings(source="endpoint"), [endpoint()]),
            make_embedder(None, [endpoint()])]
    assert [e.key for e in made[:3]] == ["endpoint:http://127.0.0.1:9:e5", "endpoint:http://127.0.0.1:8:bge",
                                         "endpoint:http://127.0.0.1:9:m"]
    assert made[3].key.startswith("local:wordllama")
    for e in made:
        await e.aclose()
    with pytest.raises(UserInputError, match="unknown local embedding model"):
        make_embedder(EmbeddingSettings(source="local", model="nope"), [])


async def test_local_embedder_runs_offline_and_ranks_by_meaning():
    emb = LocalEmbedder(batch_size=2)
    docs = ["Paris is the capital city of France.", "Bananas are a yellow fruit.", "The stock market fell today."]
    vectors = await emb.embed_corpus(docs)
    assert vectors.shape == (3, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.requests == 2  # batches of two
    q = (await emb.embed(["What is the capital of France?"]))[0]
    assert int(np.argmax(vectors @ q)) == 0
    await emb.embed_corpus(docs)
    assert emb.requests == 3  # the corpus again is free; the query cost one batch


def test_corpus_hash_is_memoised_by_document_identity_and_follows_content(monkeypatch):
    import evals.retrieval.base as base

    calls: list[int] = []
    original = base.stable_hash

    def counting(value):
        calls.append(1)
        return original(value)

    monkeypatch.setattr(base, "stable_hash", counting)
    cache = IndexCache()
    docs = make_suite().documents
    first = cache.corpus_hash(docs)
    assert cache.corpus_hash(list(docs)) == first and len(calls) == 1  # same objects: no new hash
    copies = [d.model_copy() for d in docs]
    assert cache.corpus_hash(copies) == first and len(calls) == 2  # equal content, other objects
    changed = [*copies[:-1], copies[-1].model_copy(update={"text": "other"})]
    assert cache.corpus_hash(changed) != first


def test_top_k_matches_a_full_sort_with_ties_by_position():
    import numpy as np

    from evals.retrieval.base import top_k

    rng = np.random.default_rng(0)
    for n in (1, 5, 50, 500):
        scores = rng.integers(0, 6, size=n).astype(np.float64)  # many ties
        scores[rng.random(n) < 0.2] = -np.inf
        full = np.lexsort((np.arange(n), -scores))
        for k in (1, 3, 10, n, n + 5):
            assert top_k(scores, k).tolist() == full[:k].tolist()


# ---------------------------------------------------------------------------------- on-disk cache
async def test_an_index_built_once_is_loaded_from_disk_by_another_cache(tmp_path, monkeypatch):
    """Another run or process (a fresh IndexCache on the same directory) loads the index: no chunking,
    no BM25 build, the same chunks and the same ranking."""
    import evals.retrieval.base as base

    docs, env = make_suite().documents, RetrievalEnv()
    first = IndexCache(directory=tmp_path)
    built = await first.get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    assert (first.builds, first.loads) == (1, 0)
    query = "What is the special magic number for the blue door?"
    expected = [(c.chunk_id, s) for c, s in await built.search(query, 3, env)]

    monkeypatch.setattr(base, "chunk_documents", lambda *a: pytest.fail("chunked again"))
    second = IndexCache(directory=tmp_path)
    loaded = await second.get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    assert (second.builds, second.loads) == (0, 1)
    assert loaded.chunks == built.chunks and loaded.doc_chunk_ids == built.doc_chunk_ids
    assert [(c.chunk_id, s) for c, s in await loaded.search(query, 3, env)] == expected
    masked = await loaded.search(query, 3, env, doc_ids=[docs[-1].id])
    assert masked and {c.doc_id for c, _ in masked} == {docs[-1].id}


async def test_disk_entries_are_per_corpus_chunking_and_retriever(tmp_path):
    docs, env = make_suite().documents, RetrievalEnv()
    cache = IndexCache(directory=tmp_path)
    await cache.get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    other = IndexCache(directory=tmp_path)
    await other.get(docs, ChunkingParams(chunk_tokens=64, overlap_tokens=8), build_retriever("bm25"), TOK, env)
    await other.get(docs, ChunkingParams(**SMALL), build_retriever("bm25", {"k1": 1.2}), TOK, env)
    changed = [*docs[:-1], docs[-1].model_copy(update={"text": docs[-1].text + " More text."})]
    await other.get(changed, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    assert (other.builds, other.loads) == (3, 0)
    await other.get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    assert other.loads == 1
    assert len(list((tmp_path / "index").iterdir())) == 4


async def test_an_unreadable_entry_is_built_again_and_replaced(tmp_path):
    docs, env = make_suite().documents, RetrievalEnv()
    await IndexCache(directory=tmp_path).get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    [entry] = list((tmp_path / "index").iterdir())
    (entry / "chunks.json").write_text("{not json", encoding="utf-8")
    again = IndexCache(directory=tmp_path)
    index = await again.get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    assert (again.builds, again.loads) == (1, 0) and index.chunks
    third = IndexCache(directory=tmp_path)
    await third.get(docs, ChunkingParams(**SMALL), build_retriever("bm25"), TOK, env)
    assert third.loads == 1
    assert [p.name for p in (tmp_path / "index").iterdir()] == [entry.name]  # no temporary folders left


async def test_dense_vectors_are_kept_only_for_a_named_embedder(tmp_path):
    docs = make_suite().documents
    calls: list[int] = []

    async def embed(texts):
        calls.append(len(texts))
        return np.array([[len(t) % 7 + 1.0, (len(t) % 3) + 0.5, 1.0] for t in texts])

    named = RetrievalEnv(embed=embed, embed_key="test-embedder")
    for retriever in ("dense", "hybrid"):
        calls.clear()
        first = await IndexCache(directory=tmp_path).get(docs, ChunkingParams(**SMALL), build_retriever(retriever),
                                                         TOK, named)
        assert len(calls) == 1
        again = IndexCache(directory=tmp_path)
        loaded = await again.get(docs, ChunkingParams(**SMALL), build_retriever(retriever), TOK, named)
        assert again.loads == 1 and len(calls) == 1  # the corpus was not embedded again
        query_scores = await loaded.retriever.scores("door", named)
        assert np.allclose(query_scores, await first.retriever.scores("door", named))
    unnamed = RetrievalEnv(embed=embed)
    await IndexCache(directory=tmp_path / "u").get(docs, ChunkingParams(**SMALL), build_retriever("dense"), TOK, unnamed)
    assert not (tmp_path / "u" / "index").exists() or not any((tmp_path / "u" / "index").iterdir())


async def test_the_whole_context_is_counted_once_across_runs(tmp_path, monkeypatch):
    """The long-context size of a case (its whole corpus rendered and counted) is kept on disk by
    tokenizer and text hash: a second run over the same corpus does not count it again. (This corpus is
    small: the length from which counts are kept is lowered to keep them.)"""
    import evals.retrieval.base as base

    monkeypatch.setattr(base, "STORED_COUNT_MIN_CHARS", 0)
    suite = make_suite()
    strategies = [StrategySpec(name="rag", params=SMALL)]
    first = await run_cases(suite, endpoint(), strategies, MockModel(), index_cache=IndexCache(directory=tmp_path))
    sizes = {k: r.context_tokens for k, r in first.items()}
    assert all(sizes.values())
    big = max(len(d.text) for d in suite.documents)
    counted: list[int] = []
    original = type(TOK).count

    def count(self, text):
        counted.append(len(text))
        return original(self, text)

    monkeypatch.setattr(type(TOK), "count", count)
    again = await run_cases(suite, endpoint(), strategies, MockModel(), index_cache=IndexCache(directory=tmp_path))
    assert {k: r.context_tokens for k, r in again.items()} == sizes
    assert not [n for n in counted if n > big]  # no whole-corpus text was counted again


def test_token_counts_are_kept_on_disk_for_long_texts_only(tmp_path):
    """A long text's count is read back by another cache on the same folder; a short text is counted
    each time (a file costs more than counting it), and nothing of it is written."""
    import evals.retrieval.base as base

    long_text = "The quick brown fox jumps over the lazy dog. " * (base.STORED_COUNT_MIN_CHARS // 45 + 1)
    short_text = "The quick brown fox."
    first = IndexCache(directory=tmp_path)
    first.store_count(long_text, TOK, 12345)
    first.store_count(short_text, TOK, 5)
    second = IndexCache(directory=tmp_path)
    assert second.stored_count(long_text, TOK) == 12345
    assert second.stored_count(short_text, TOK) is None
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
