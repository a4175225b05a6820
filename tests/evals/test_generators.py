"""The synthetic long-context generators: sizes, needle positions, answers, determinism, bad parameters."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Any

import pytest

from evals.domain import Suite
from evals.errors import UserInputError
from evals.presets import CHAT_RESERVE, get_preset, render
from evals.suites.base import SIZING_MARGIN
from evals.suites.lim_kv import generate_lim_kv
from evals.suites.niah import DEFAULT_NEEDLE, depth_grid, generate_niah
from evals.suites.passkey import generate_passkey
from evals.suites.ruler_cwe import generate_ruler_cwe
from evals.suites.ruler_fwe import generate_ruler_fwe
from evals.suites.ruler_niah import (
    generate_ruler_niah_multikey,
    generate_ruler_niah_multiquery,
    generate_ruler_niah_multivalue,
    generate_ruler_niah_single,
)
from evals.suites.ruler_vt import generate_ruler_vt
from evals.suites.sizing import TokenCounter, UnitHaystack, fit
from evals.tokens import local_tokenizer

TOKENIZERS = ["cl100k", "deepseek-v4"]

KINDS: dict[str, tuple[Any, dict[str, Any], str]] = {
    "niah": (generate_niah, {"lengths": [1200, 2500], "depths": [0, 40, 100]}, "subspan_em"),
    "ruler_niah_single": (generate_ruler_niah_single, {"lengths": [600, 2500], "depths": [10, 70]}, "ruler_part"),
    "ruler_niah_multikey": (generate_ruler_niah_multikey, {"lengths": [800, 3000], "samples": 2}, "ruler_part"),
    "ruler_niah_multivalue": (generate_ruler_niah_multivalue,
                              {"lengths": [800, 3000], "value_type": "word"}, "ruler_all"),
    "ruler_niah_multiquery": (generate_ruler_niah_multiquery,
                              {"lengths": [800, 3000], "depths": [30], "value_type": "uuid"}, "ruler_all"),
    "ruler_vt": (generate_ruler_vt, {"lengths": [1200, 3000], "num_chains": 2}, "ruler_all"),
    "ruler_cwe": (generate_ruler_cwe, {"lengths": [1500, 3000]}, "ruler_all"),
    "ruler_fwe": (generate_ruler_fwe, {"lengths": [600, 3000]}, "ruler_all"),
    "lim_kv": (generate_lim_kv, {"lengths": [4000], "depths": [0, 50, 100]}, "best_subspan_em"),
    "passkey": (generate_passkey, {"lengths": [600, 2500], "depths": [0, 50, 100]}, "subspan_em"),
}
NEEDLE_KINDS = [k for k in KINDS if k not in ("ruler_cwe", "ruler_fwe")]


@functools.cache
def tokenizer(name: str):  # type: ignore[no-untyped-def]
    return local_tokenizer(name)


@functools.cache
def generated(kind: str, tok: str, extra: tuple[tuple[str, Any], ...] = ()) -> Suite:
    fn, params, _ = KINDS[kind]
    return fn({**params, **dict(extra)}, tokenizer(tok))


def doc_of(suite: Suite, qid: str) -> str:
    q = next(q for q in suite.questions if q.id == qid)
    assert q.doc_ids == [f"{qid}-ctx"]
    return suite.document_map()[q.doc_ids[0]].text


def sized(suite: Suite, qid: str, t: Any) -> tuple[int, int]:
    """(tokens of the prompt the model reads, tokens the length budget counts) for a question.

    Under a preset: the whole filled template plus the chat reserve, output budget and margin; under
    ctxeval's frame: document + question."""
    q = next(q for q in suite.questions if q.id == qid)
    doc = doc_of(suite, qid)
    if suite.metadata.get("preset") is None:
        n = t.count(doc) + t.count(q.question)
        return n, n
    task = get_preset(suite.metadata["preset"]).prompt_for(q)
    assert task is not None
    prompt = t.count(render(task, q, doc).text())
    assert q.metadata["reserved_tokens"] == CHAT_RESERVE + (task.max_tokens or 0) + SIZING_MARGIN
    return prompt, prompt + q.metadata["reserved_tokens"]


# ------------------------------------------------------------------------------------- every kind
@pytest.mark.parametrize("tok", TOKENIZERS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_length_is_within_two_percent_under_the_target(kind: str, tok: str) -> None:
    suite = generated(kind, tok)
    t = tokenizer(tok)
    _, params, scorer = KINDS[kind]
    assert suite.default_scorers == [scorer]
    assert {q.metadata["context_length"] for q in suite.questions} == set(params["lengths"])
    for q in suite.questions:
        m = q.metadata
        assert m["task"] == kind and m["tokenizer"] == t.name
        prompt, budget = sized(suite, q.id, t)
        assert prompt == m["context_tokens"]
        assert 0.98 * m["context_length"] <= budget <= m["context_length"], (q.id, budget)


@pytest.mark.parametrize("tok", TOKENIZERS)
@pytest.mark.parametrize("kind", NEEDLE_KINDS)
def test_each_needle_is_present_once_at_the_recorded_depth(kind: str, tok: str) -> None:
    suite = generated(kind, tok)
    t = tokenizer(tok)
    for q in suite.questions:
        text = doc_of(suite, q.id)
        m = q.metadata
        assert m["needles"] and len(q.evidence) == len(m["needles"])
        for ev, needle, depth in zip(q.evidence, m["needles"], m["needle_depths"], strict=True):
            assert ev.doc_id == f"{q.id}-ctx"
            assert ev.start is not None and ev.end is not None
            assert text[ev.start:ev.end] == needle
            assert text.count(needle) == 1
            recomputed = 100 * t.count(text[: ev.start]) / t.count(text)
            assert depth == pytest.approx(recomputed, abs=0.006)
        assert m["depth"] == m["needle_depths"][0]
        assert m["needle"] == m["needles"][0]
        if m.get("depth_target") is not None and kind != "lim_kv":
            # the needle lands within a few sentences of the asked depth
            assert abs(m["depth"] - m["depth_target"]) <= 6.0, (q.id, m["depth"], m["depth_target"])


@pytest.mark.parametrize("kind", NEEDLE_KINDS)
def test_needles_sit_at_sentence_or_line_boundaries(kind: str) -> None:
    suite = generated(kind, "cl100k")
    for q in suite.questions:
        text = doc_of(suite, q.id)
        lines = kind in ("ruler_vt", "passkey") or q.metadata.get("haystack") in ("noise", "needle")
        for ev in q.evidence:
            assert ev.start is not None and ev.end is not None
            before, after = text[: ev.start], text[ev.end:]
            if kind == "lim_kv":
                assert before.endswith(("{", ",\n ")) and after.startswith((",\n", "}"))
            elif lines:  # a line of its own
                assert before in ("",) or before.endswith("\n")
                assert after == "" or after.startswith("\n")
            elif after:  # prose: after a sentence end, before the next sentence (at the very end, a cut)
                assert before == "" or re.search(r"[.!?] $", before), before[-40:]
                assert after[:1].isspace()  # a space, or the paragraph break that followed


@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_same_suite_other_seed_other_suite(kind: str) -> None:
    fn, params, _ = KINDS[kind]
    small = {**params, "lengths": params["lengths"][:1]}
    tok = tokenizer("cl100k")
    first = fn(small, tok)
    again = fn(dict(small), tok)
    other = fn({**small, "seed": 7}, tok)
    assert first.content_hash == again.content_hash
    assert first.content_hash != other.content_hash
    assert [d.text for d in first.documents] != [d.text for d in other.documents]


# ----------------------------------------------------------------------------------- per kind
@pytest.mark.parametrize("tok", TOKENIZERS)
def test_niah_defaults_and_custom_haystack(tok: str) -> None:
    suite = generated("niah", tok)
    for q in suite.questions:
        assert q.metadata["needle"] == DEFAULT_NEEDLE
        assert q.answers[0].lower() in DEFAULT_NEEDLE.lower()
        assert "San Francisco" in q.question
        if q.metadata["depth_target"] == 0:
            assert doc_of(suite, q.id).startswith(DEFAULT_NEEDLE)
        if q.metadata["depth_target"] == 100:
            assert doc_of(suite, q.id).endswith(DEFAULT_NEEDLE)
    text = "Call me Ishmael. Some years ago I went to sea. It is a way I have of driving off the spleen. " * 5
    custom = generate_niah({"lengths": [700], "depths": [50], "haystack_text": text,
                            "needle": "The magic fruit is a mango.", "question": "What is the magic fruit?",
                            "answers": ["mango"]}, tokenizer(tok))
    doc = custom.documents[0].text
    assert "The magic fruit is a mango." in doc and "Ishmael" in doc
    words = doc.replace("The magic fruit is a mango.", "").split()
    assert set(words[:-1]) <= set(text.split())  # the user's words only (the cut may end inside the last)
    assert custom.questions[0].answers == ["mango"]


def test_niah_sigmoid_depths_crowd_the_ends() -> None:
    assert depth_grid(5, "linear") == [0.0, 25.0, 50.0, 75.0, 100.0]
    sig = depth_grid(5, "sigmoid")
    assert sig[0] == 0.0 and sig[-1] == 100.0 and sig[2] == 50.0
    assert sig[1] < 25.0 and sig[3] > 75.0
    suite = generate_niah({"lengths": [500], "depth_intervals": 5, "depth_spacing": "sigmoid"},
                          tokenizer("cl100k"))
    assert [q.metadata["depth_target"] for q in suite.questions] == sig


NEEDLE_RE = re.compile(r"One of the special magic (\w+) for (\S+) is: (\S+)\.")


@pytest.mark.parametrize("tok", TOKENIZERS)
@pytest.mark.parametrize("kind", ["ruler_niah_single", "ruler_niah_multikey", "ruler_niah_multivalue",
                                  "ruler_niah_multiquery"])
def test_ruler_niah_answers_are_the_values_of_the_asked_keys(kind: str, tok: str) -> None:
    suite = generated(kind, tok)
    for q in suite.questions:
        text = doc_of(suite, q.id)
        found = NEEDLE_RE.findall(text)
        by_key: dict[str, list[str]] = {}
        for _, key, value in found:
            by_key.setdefault(key, []).append(value)
        asked = q.metadata["keys"]
        for key in asked:
            assert key in q.question
        assert sorted(q.answers) == sorted(v for k in asked for v in by_key[k])
        for value in q.answers:
            assert text.count(value) == 1
        expected_needles = {"ruler_niah_single": 1, "ruler_niah_multikey": 4, "ruler_niah_multivalue": 4,
                            "ruler_niah_multiquery": 4}[kind]
        assert q.metadata["num_needles"] == expected_needles
        if kind == "ruler_niah_multikey":
            assert len(asked) == 1 and len(by_key) == 4
        if kind == "ruler_niah_multivalue":
            assert len(asked) == 1 and len(q.answers) == 4
            assert all(re.fullmatch(r"[a-z]+-[a-z]+", v) for v in q.answers)
        if kind == "ruler_niah_multiquery":
            assert len(asked) == 4 and len(q.answers) == 4
            assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", v)
                       for v in q.answers)
        if kind == "ruler_niah_single":
            assert q.question.startswith("A special magic number is hidden")
            assert text.startswith("The grass is green.") or q.metadata["depth"] == 0


def test_ruler_niah_needle_haystack_is_made_of_distractors() -> None:
    tok = tokenizer("cl100k")
    suite = generate_ruler_niah_multikey({"lengths": [4000], "haystack": "needle", "key_type": "uuid",
                                          "value_type": "uuid"}, tok)
    q = suite.questions[0]
    text = suite.documents[0].text
    found = NEEDLE_RE.findall(text)
    assert len(found) > 40
    assert len({key for _, key, _ in found}) == len(found)
    assert sum(1 for _, key, _ in found if key == q.metadata["keys"][0]) == 1
    assert all(line.startswith("One of the special magic uuids") for line in text.splitlines() if line)
    noise = generate_ruler_niah_single({"lengths": [1000], "haystack": "essay", "key_type": "number"}, tok)
    assert "The grass is green" not in noise.documents[0].text


def resolve(assign: dict[str, str], name: str) -> str:
    value = assign[name]
    return resolve(assign, value[4:]) if value.startswith("VAR ") else value


@pytest.mark.parametrize("tok", TOKENIZERS)
def test_variable_tracking_chain_resolves_to_the_answer(tok: str) -> None:
    suite = generated("ruler_vt", tok)
    for q in suite.questions:
        text = doc_of(suite, q.id)
        assign = dict(re.findall(r"^VAR ([A-Z]{5}) = (.+)$", text, flags=re.M))
        assert len(assign) == 2 * 5
        query = q.metadata["value"]
        assert f"value {query}" in q.question
        assert sorted(n for n in assign if resolve(assign, n) == query) == sorted(q.answers)
        assert len(q.answers) == 5
        positions = [text.index(f"VAR {n} = ") for n in q.answers]
        assert positions == sorted(positions)  # the chain is written in order


@pytest.mark.parametrize("tok", TOKENIZERS)
def test_common_words_appear_the_stated_number_of_times(tok: str) -> None:
    suite = generated("ruler_cwe", tok)
    for q in suite.questions:
        text = doc_of(suite, q.id)
        items = re.findall(r"(\d+)\. (\S+)", text)
        assert [int(i) for i, _ in items] == list(range(1, len(items) + 1))
        counts = Counter(w for _, w in items)
        assert len(q.answers) == 10
        # RULER's repeats: 30 and 3 from 4,096 tokens, 6 and 1 below (these lengths are below)
        assert q.metadata["context_length"] < 4096
        assert (q.metadata["common_repeats"], q.metadata["uncommon_repeats"]) == (6, 1)
        assert all(counts[w] == 6 for w in q.answers)
        assert all(c == 1 for w, c in counts.items() if w not in q.answers)
        assert len(counts) == q.metadata["num_words"]
        assert "10 most common words" in q.question


def test_common_words_repeats_from_4096_tokens_are_30_and_3() -> None:
    suite = generate_ruler_cwe({"lengths": [4096]}, tokenizer("cl100k"))
    q = suite.questions[0]
    counts = Counter(w for _, w in re.findall(r"(\d+)\. (\S+)", doc_of(suite, q.id)))
    assert all(counts[w] == 30 for w in q.answers)
    assert all(c == 3 for w, c in counts.items() if w not in q.answers)
    # the worked example has 40 words, 10 of them ten times and the rest three times
    example = q.metadata["template_vars"]["icl_example"]
    listed = re.findall(r"(\d+)\. (\S+)", example.split("Question:")[0])
    assert Counter(Counter(w for _, w in listed).values()) == {10: 10, 3: 30}


@pytest.mark.parametrize("tok", TOKENIZERS)
def test_frequent_words_are_the_most_frequent(tok: str) -> None:
    suite = generated("ruler_fwe", tok)
    for q in suite.questions:
        counts = Counter(doc_of(suite, q.id).split(" "))
        filler = counts.pop("...")
        ranked = counts.most_common()
        assert filler > ranked[0][1]
        assert [w for w, _ in ranked[:3]] == q.answers
        assert ranked[2][1] > ranked[3][1]
        assert [c for _, c in ranked[:3]] == q.metadata["counts"]


@pytest.mark.parametrize("tok", TOKENIZERS)
def test_kv_gold_pair_is_at_the_requested_index(tok: str) -> None:
    suite = generated("lim_kv", tok)
    for q in suite.questions:
        records = list(json.loads(doc_of(suite, q.id)).items())
        k = q.metadata["num_pairs"]
        assert len(records) == k and len({v for _, v in records}) == k
        idx = round(q.metadata["depth_target"] / 100 * (k - 1))
        assert records[idx] == (q.metadata["gold_key"], q.answers[0])
        assert q.metadata["gold_index"] == idx
        assert f'"{records[idx][0]}"' in q.question
    by_index = generate_lim_kv({"lengths": [4000], "gold_indices": [0, 5, -1]}, tokenizer(tok))
    for q, want in zip(by_index.questions, [0, 5, -1], strict=True):
        records = list(json.loads(by_index.documents[by_index.questions.index(q)].text).items())
        assert records[want] == (q.metadata["gold_key"], q.answers[0])


@pytest.mark.parametrize("wording", ["plain", "special_token", "larger"])
def test_passkey_wordings(wording: str) -> None:
    suite = generated("passkey", "cl100k", (("wording", wording),))
    for q in suite.questions:
        keys = re.findall(r"The pass key is (\d+)\. Remember it\. \1 is the pass key\.", doc_of(suite, q.id))
        assert len(keys) == (2 if wording == "larger" else 1)
        assert len(set(keys)) == len(keys)
        assert q.answers == [max(keys, key=int)]
        assert q.metadata["wording"] == wording
    question = suite.questions[0].question
    if wording == "special_token":
        assert "pass key" not in question and "special token" in question
    elif wording == "plain":
        assert question.endswith("What is the pass key?")
    else:
        assert "larger" in question


# ----------------------------------------------------------------------------------- bad params
BAD = [
    (generate_niah, {"lenghts": [1000]}, "lenghts"),
    (generate_niah, {"lengths": [-5]}, "lengths"),
    (generate_niah, {"lengths": [1000, 1000]}, "lengths"),
    (generate_niah, {"depths": [10, 150]}, "depths"),
    (generate_niah, {"depth_spacing": "cubic"}, "depth_spacing"),
    (generate_niah, {"needle": "The code is 42."}, "answers"),
    (generate_niah, {"haystack_text": "no sentence end here"}, "haystack_text"),
    (generate_niah, {"lengths": [100], "question": "Where? " * 80}, "lengths"),
    (generate_niah, {"seed": "abc"}, "seed"),
    (generate_ruler_niah_single, {"haystack": "sand"}, "haystack"),
    (generate_ruler_niah_single, {"value_type": "color"}, "value_type"),
    (generate_ruler_niah_single, {"num_keys": 3}, "num_keys"),
    (generate_ruler_niah_single, {"haystack": "noise", "haystack_text": "Some text."}, "haystack_text"),
    (generate_ruler_niah_multikey, {"num_keys": 1}, "num_keys"),
    (generate_ruler_niah_multikey, {"lengths": [250], "haystack": "needle", "key_type": "uuid",
                                    "value_type": "uuid"}, "lengths"),
    (generate_ruler_niah_multivalue, {"num_values": 0}, "num_values"),
    (generate_ruler_niah_multiquery, {"num_queries": "four"}, "num_queries"),
    (generate_ruler_vt, {"num_hops": 0}, "num_hops"),
    (generate_ruler_vt, {"depths": [50]}, "depths"),
    (generate_ruler_cwe, {"common_repeats": 3, "uncommon_repeats": 3}, "uncommon_repeats"),
    (generate_ruler_cwe, {"lengths": [300]}, "lengths"),
    (generate_ruler_fwe, {"alpha": 1.0}, "alpha"),
    (generate_lim_kv, {"depths": [0], "gold_indices": [0]}, "gold_indices"),
    (generate_lim_kv, {"lengths": [3000], "gold_indices": [500]}, "gold_indices"),
    (generate_passkey, {"wording": "fancy"}, "wording"),
    (generate_passkey, {"samples": 0}, "samples"),
]


@pytest.mark.parametrize(("fn", "params", "field"), BAD, ids=[f"{f.__name__}-{fld}" for f, _, fld in BAD])
def test_bad_params_name_the_field(fn: Any, params: dict[str, Any], field: str) -> None:
    with pytest.raises(UserInputError) as info:
        fn(params, tokenizer("cl100k"))
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(UserInputError, match="mapping"):
        generate_passkey(["lengths"], tokenizer("cl100k"))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- sizing
def test_fit_finds_the_largest_size_in_few_probes() -> None:
    probes: list[int] = []

    def build(n: int) -> int:
        probes.append(n)
        return n

    # true size is 1.07 tokens per unit plus 40; the estimate says 1.0 per unit
    got = fit(100_000, build, lambda n: int(n * 1.07) + 40, lambda n: n + 40, n_max=200_000, what="t")
    assert got.tokens == int(got.n * 1.07) + 40
    assert 99_500 <= got.tokens <= 100_000
    assert len(probes) <= 6


def test_fit_refuses_a_target_below_the_fixed_part() -> None:
    with pytest.raises(UserInputError, match="too short") as info:
        fit(100, lambda n: n, lambda n: n + 150, lambda n: n + 150, n_max=1000, what="t")
    assert info.value.field == "lengths"


def test_unit_haystack_separates_needles_from_their_neighbours() -> None:
    counter = TokenCounter(tokenizer("cl100k"))
    hay = UnitHaystack(["A b.", " C d.", " E f."], [True, True, True], " ", counter)
    text, spans = hay.render(3, ["N1.", "N2.", "N3."], [0, 0, 3])
    assert text == "N1. N2. A b. C d. E f. N3."
    assert [text[s:e] for s, e in spans] == ["N1.", "N2.", "N3."]
    lines = UnitHaystack(["x", "\ny", "\nz"], [True, True, True], "\n", counter)
    text, spans = lines.render(3, ["N"], [2])
    assert text == "x\ny\nN\nz" and text[spans[0][0]:spans[0][1]] == "N"
    assert lines.render(0, ["N"], [0]) == ("N", [(0, 1)])


def test_variable_tracking_in_prose_ends_each_statement_with_a_period() -> None:
    suite = generate_ruler_vt({"lengths": [2000], "haystack": "essay"}, tokenizer("cl100k"))
    q = suite.questions[0]
    text = doc_of(suite, q.id)
    assert all(f"VAR {n} = " in text for n in q.answers)
    assert re.search(rf"VAR {q.answers[0]} = {q.metadata['value']}\.", text)
    assert all(text[ev.start:ev.end].endswith(".") for ev in q.evidence)
