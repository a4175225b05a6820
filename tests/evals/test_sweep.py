"""Length × depth sweeps: evidence always kept, placed at the recorded depth, lengths respected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.domain import Document, Evidence, Question, Suite
from evals.errors import UserInputError
from evals.suites.importers import import_longbench
from evals.suites.registry import generate
from evals.suites.sweep import sweep
from evals.tokens import local_tokenizer

TOK = local_tokenizer("cl100k")
WORDS = ("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heath", "inlet", "juniper")


def _corpus() -> Suite:
    docs = [Document(id=f"d{i:02d}", text=" ".join(f"{WORDS[i % 10]} {j}." for j in range(3 + i % 7)))
            for i in range(40)]
    return Suite(name="toy", documents=docs, questions=[
        Question(id="one", question="?", answers=["a"], evidence=[Evidence(doc_id="d03")]),
        Question(id="two", question="?", answers=["b"], evidence=[Evidence(doc_id="d10"), Evidence(doc_id="d05")]),
        Question(id="none", question="no evidence here", answers=["c"]),
    ])


def _check_variant(suite: Suite, q: Question) -> None:
    """Evidence kept as one block, lengths and depth consistent with the documents themselves."""
    counts = [TOK.count(d.text) for d in suite.context_documents(q)]
    evidence = [e.doc_id for e in q.evidence]
    start = q.doc_ids.index(evidence[0])
    assert q.doc_ids[start:start + len(evidence)] == evidence
    assert sum(counts) == q.metadata["context_tokens"]
    assert q.metadata["context_tokens"] <= q.metadata["context_length"]
    before = sum(counts[:start])
    other = sum(counts) - q.metadata["evidence_tokens"]
    assert before == q.metadata["evidence_start_tokens"]
    assert q.metadata["depth"] == (round(before / other * 100, 2) if other else 0.0)


def test_variants_for_every_question_length_and_depth() -> None:
    suite = _corpus()
    out = sweep(suite, lengths=[200, 500], depths=[0, 25, 50, 100], tokenizer=TOK, seed=1)
    assert [q.id for q in out.questions][:4] == ["one@L200@D0", "one@L200@D25", "one@L200@D50", "one@L200@D100"]
    assert len(out.questions) == 2 * 2 * 4
    assert out.metadata["sweep"]["skipped"] == ["none"]
    assert out.documents == suite.documents
    largest = max(TOK.count(d.text) for d in suite.documents)
    for q in out.questions:
        _check_variant(out, q)
        assert q.metadata["context_tokens"] >= q.metadata["context_length"] - largest
        assert q.metadata["source_question"] == q.id.split("@")[0]
        other = q.metadata["context_tokens"] - q.metadata["evidence_tokens"]
        assert abs(q.metadata["depth"] - q.metadata["depth_target"]) <= 50 * largest / other + 0.01
        if q.metadata["depth_target"] == 0:
            assert q.doc_ids[0] == q.evidence[0].doc_id and q.metadata["depth"] == 0
        if q.metadata["depth_target"] == 100:
            assert q.doc_ids[-1] == q.evidence[-1].doc_id and q.metadata["depth"] == 100
    # one distractor set per question and length; only the evidence moves between depths
    by_length = {}
    for q in out.questions:
        key = (q.metadata["source_question"], q.metadata["context_length"])
        others = [d for d in q.doc_ids if d not in {e.doc_id for e in q.evidence}]
        assert by_length.setdefault(key, others) == others


def test_deterministic_by_seed() -> None:
    suite = _corpus()
    a = sweep(suite, lengths=[500], depths=[50], tokenizer=TOK, seed=7)
    b = sweep(suite, lengths=[500], depths=[50], tokenizer=TOK, seed=7)
    c = sweep(suite, lengths=[500], depths=[50], tokenizer=TOK, seed=8)
    assert a == b
    assert [q.doc_ids for q in a.questions] != [q.doc_ids for q in c.questions]


def test_too_short_a_length_names_the_question() -> None:
    suite = _corpus()
    counts = {d.id: TOK.count(d.text) for d in suite.documents}
    length = counts["d03"] + 1  # enough for question one, not for two
    assert counts["d10"] + counts["d05"] > length
    with pytest.raises(UserInputError) as err:
        sweep(suite, lengths=[1000, length], depths=[0], tokenizer=TOK)
    assert f"question 'two': its evidence documents take {counts['d10'] + counts['d05']} tokens" in str(err.value)
    assert f"more than the length {length}" in str(err.value)
    assert err.value.field == "lengths"


def test_too_long_a_length_is_capped_with_a_note() -> None:
    suite = _corpus()
    corpus_tokens = sum(TOK.count(d.text) for d in suite.documents)
    out = sweep(suite, lengths=[corpus_tokens * 2], depths=[50], tokenizer=TOK)
    for q in out.questions:
        assert q.metadata["capped"] is True
        assert q.metadata["context_tokens"] == corpus_tokens
        assert f"only {corpus_tokens:,} tokens" in q.metadata["note"]
        assert sorted(q.doc_ids) == sorted(d.id for d in suite.documents)
        _check_variant(out, q)


@pytest.mark.parametrize(("lengths", "depths", "message"), [
    ([], [0], "at least one length"),
    ([100], [], "at least one depth"),
    ([0], [0], "positive whole number"),
    ([100], [101], "between 0 and 100"),
])
def test_bad_grids(lengths: list[int], depths: list[float], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        sweep(_corpus(), lengths=lengths, depths=depths, tokenizer=TOK)


def test_suite_without_evidence_cannot_be_swept() -> None:
    suite = Suite(name="s", documents=[Document(id="a", text="x")], questions=[Question(id="q", question="?")])
    with pytest.raises(UserInputError, match="no question cites evidence"):
        sweep(suite, lengths=[10], depths=[0], tokenizer=TOK)


def test_multihop_evidence_kept_and_found_at_the_recorded_depth() -> None:
    suite = generate("multihop", {"seed": 2, "target_tokens": 12_000, "samples": 10}, TOK)
    out = sweep(suite, lengths=[2_000, 6_000, 11_000], depths=[0, 33.3, 50, 100], tokenizer=TOK, seed=2)
    assert len(out.questions) == 10 * 3 * 4
    assert {q.id.rsplit("@", 1)[1] for q in out.questions} == {"D0", "D33.3", "D50", "D100"}
    docs = out.document_map()
    for q in out.questions:
        _check_variant(out, q)
        assert {e.doc_id for e in q.evidence} <= set(q.doc_ids)
        # the evidence text sits where the depth says in the concatenated context
        context = "\n\n".join(docs[d].text for d in q.doc_ids)
        first = docs[q.evidence[0].doc_id].text
        tokens_before = TOK.count(context[:context.index(first)])
        other = q.metadata["context_tokens"] - q.metadata["evidence_tokens"]
        assert abs(tokens_before / other * 100 - q.metadata["depth"]) < 1.0
        assert q.metadata["context_tokens"] >= 0.97 * q.metadata["context_length"]


def test_sweep_of_an_imported_longbench_suite(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    records = [{"_id": f"r{i}", "input": f"question {i}?", "answers": [str(i)],
                "context": " ".join(f"{WORDS[i]} fact {j}." for j in range(40))} for i in range(8)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    suite = import_longbench(path)
    out = sweep(suite, lengths=[800], depths=[0, 100], tokenizer=TOK)
    for q in out.questions:
        _check_variant(out, q)
        assert len(q.doc_ids) > 1  # other records' contexts serve as distractors
