"""The synthetic multi-hop organisation: determinism, size, and answers that follow from the evidence."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from evals.domain import Suite
from evals.errors import UserInputError
from evals.suites.registry import generate, generator, list_kinds
from evals.tokens import local_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TOK = local_tokenizer("cl100k")
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"


@pytest.fixture(scope="module")
def suite() -> Suite:
    return generate("multihop", {"seed": 11, "target_tokens": 24_000, "samples": 120}, TOK)


def _has(text: str, needle: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text) is not None


def test_registry_lists_every_kind_and_rejects_unknown_ones() -> None:
    assert {"niah", "ruler_niah_single", "ruler_niah_multikey", "ruler_niah_multivalue",
            "ruler_niah_multiquery", "ruler_vt", "ruler_cwe", "ruler_fwe", "lim_kv", "passkey",
            "multihop"} == set(list_kinds())
    assert generator("multihop").__name__ == "generate_multihop"
    with pytest.raises(UserInputError, match="unknown suite kind 'haystack'; known kinds: lim_kv, multihop"):
        generate("haystack", {}, TOK)


def test_same_seed_same_suite_in_fresh_processes() -> None:
    code = ("from evals.suites.registry import generate; from evals.tokens import local_tokenizer; "
            "print(generate('multihop', {'seed': 3, 'target_tokens': 6000, 'samples': 15}, "
            "local_tokenizer('cl100k')).content_hash)")
    hashes = set()
    for hash_seed in ("12345",):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        hashes.add(out.stdout.strip())
    here = generate("multihop", {"seed": 3, "target_tokens": 6000, "samples": 15}, TOK).content_hash
    assert hashes == {here}
    other = generate("multihop", {"seed": 4, "target_tokens": 6000, "samples": 15}, TOK).content_hash
    assert other != here


@pytest.mark.parametrize("target", [4_000, 10_000, 60_000])
def test_size_within_two_percent_of_target(target: int) -> None:
    s = generate("multihop", {"seed": target, "target_tokens": target, "samples": 10}, TOK)
    total = sum(TOK.count(d.text) for d in s.documents)
    assert abs(total - target) <= 0.02 * target
    joined = TOK.count("\n\n".join(d.text for d in s.documents))
    assert abs(joined - target) <= 0.02 * target
    assert s.metadata["tokens"] == total


def test_every_question_has_metadata_and_distinct_evidence(suite: Suite) -> None:
    assert len(suite.questions) == 120
    kinds = Counter(q.metadata["qtype"] for q in suite.questions)
    assert kinds == {"single_hop": 24, "two_hop": 24, "aggregation": 24, "comparison": 24, "unanswerable": 24}
    for q in suite.questions:
        assert q.metadata["task"] == "multihop"
        assert q.answers and q.evidence
        ids = [e.doc_id for e in q.evidence]
        assert len(ids) == len(set(ids))
        expected_hops = {"single_hop": 1, "two_hop": 2, "comparison": 2, "unanswerable": 0}
        if q.metadata["qtype"] in expected_hops:
            assert q.metadata["hops"] == expected_hops[q.metadata["qtype"]], q
        else:
            assert q.metadata["hops"] == len(ids)
    assert len({q.question for q in suite.questions}) == len(suite.questions)


def test_answers_are_in_the_evidence_and_facts_nowhere_else(suite: Suite) -> None:
    docs = suite.document_map()
    for q in suite.questions:
        evidence = {e.doc_id for e in q.evidence}
        if q.metadata["qtype"] in ("single_hop", "two_hop", "comparison"):
            assert any(_has(docs[d].text, q.answers[0]) for d in evidence), q
        for a, b in q.metadata["facts"]:
            holders = {d.id for d in suite.documents if _has(d.text, a) and _has(d.text, b)}
            assert holders, (q.id, a, b)
            assert holders <= evidence, (q.id, a, b, holders - evidence)
        if q.metadata["qtype"] == "two_hop":  # each hop needs its own document
            for d in evidence:
                assert not all(_has(docs[d].text, x) for pair in q.metadata["facts"] for x in pair)


def test_aggregation_counts_follow_from_the_evidence(suite: Suite) -> None:
    docs = suite.document_map()
    seen = set()
    for q in (q for q in suite.questions if q.metadata["qtype"] == "aggregation"):
        template = q.metadata["template"]
        seen.add(template)
        ev = [docs[e.doc_id] for e in q.evidence]
        answer = int(q.answers[0])
        if template == "joined_before":
            years = [int(re.search(rf"(?:{MONTHS}) (\d{{4}})", d.text).group(1)) for d in ev]
            assert answer == sum(y < q.metadata["threshold_year"] for y in years)
        else:
            assert answer == len(ev)
        # nobody else is said to belong to the same group
        group = re.search(r"the (.+?) (?:team|office)\b", q.question) or re.search(r"based in (.+)\?", q.question)
        name = group.group(1)
        folder = ev[0].id.split("/")[0]
        others = [d.id for d in suite.documents if d.id.startswith(folder + "/") and _has(d.text, name)
                  and d.id not in {e.doc_id for e in q.evidence}]
        assert others == [], (q.question, others)
    assert len(seen) >= 3


def test_unanswerable_questions_ask_what_no_document_states(suite: Suite) -> None:
    everything = "\n".join(d.text for d in suite.documents)
    unanswerable = [q for q in suite.questions if q.metadata["qtype"] == "unanswerable"]
    for q in unanswerable:
        assert q.answers == ["unanswerable"] and q.unanswerable
        for term in q.metadata["absent_terms"]:
            assert re.search(rf"\b{re.escape(term)}\b", everything, re.IGNORECASE) is None
    assert len({q.metadata["template"] for q in unanswerable}) >= 4


def test_names_are_unique_and_never_inside_one_another(suite: Suite) -> None:
    people = [d.title.removeprefix("Profile: ") for d in suite.documents if d.id.startswith("people/")]
    teams = [d.title.removesuffix(" team") for d in suite.documents if d.id.startswith("teams/")]
    cities = [d.title.removesuffix(" office") for d in suite.documents if d.id.startswith("offices/")]
    projects = [d.title.removeprefix("Project brief: ") for d in suite.documents if d.id.startswith("projects/")]
    names = people + teams + cities + projects
    assert len(names) == len(set(names))
    for a in names:
        for b in names:
            assert a == b or not _has(b, a), (a, b)


def test_phrasing_varies(suite: Suite) -> None:
    templates = Counter(q.metadata["template"] for q in suite.questions)
    assert len(templates) >= 15
    openings = {" ".join(q.question.split()[:3]) for q in suite.questions}
    assert len(openings) >= 25
    profiles = [d.text.split("\n\n", 1)[1] for d in suite.documents if d.id.startswith("people/")]
    member_lines = Counter(re.sub(r"[A-Z][\w'-]*", "X", p.split(". ")[0]) for p in profiles)
    assert len(member_lines) >= 4


def test_three_hop_on_request_and_sweep_through_params() -> None:
    s = generate("multihop", {"seed": 5, "target_tokens": 8000, "samples": 4, "qtypes": ["three_hop"]}, TOK)
    assert {q.metadata["qtype"] for q in s.questions} == {"three_hop"}
    assert all(q.metadata["hops"] == 3 for q in s.questions)
    swept = generate("multihop", {"seed": 5, "samples": 3, "qtypes": ["single_hop"], "lengths": [1000, 3000],
                                  "depths": [0, 100]}, TOK)
    assert swept.metadata["target_tokens"] == 4000
    assert len(swept.questions) == 3 * 2 * 2
    assert {q.id.split("@", 1)[1] for q in swept.questions} == {"L1000@D0", "L1000@D100", "L3000@D0", "L3000@D100"}


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"target_tokens": 100}, "target_tokens", "greater than or equal to 4000"),
    ({"target_tokens": 2_000_000}, "target_tokens", "less than or equal to 1000000"),
    ({"samples": 0}, "samples", "greater than or equal to 1"),
    ({"qtypes": ["riddle"]}, "qtypes.0", "single_hop"),
    ({"depths": [50]}, None, "'depths' needs 'lengths'"),
    ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
])
def test_bad_params_name_the_field(params: dict[str, object], field: str | None, message: str) -> None:
    with pytest.raises(UserInputError) as err:
        generate("multihop", params, TOK)
    assert err.value.field == field
    assert message in str(err.value)
