"""Answer metrics, retrieval recall, ranking metrics, the registry and ``ctxeval score``."""

import json
import math
import re

import pytest
from rouge_score import rouge_scorer
from typer.testing import CliRunner

from app.cli import cli
from evals import registry
from evals.domain import CaseResult, Evidence, Outcome, Question, RetrievedChunk
from evals.errors import UserInputError
from evals.scorers import (
    SCORERS,
    check_references,
    choice,
    exact_match,
    extract_choice,
    f1,
    get_scorer,
    mrecall_at_k,
    mrr,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    retrieval_recall,
    rouge_l,
    ruler_all,
    ruler_part,
    ruler_postprocess,
    score_case,
    subspan_em,
)


# ------------------------------------------------------------------------------------ normalisation
@pytest.mark.parametrize(("raw", "norm"), [
    ("The  Eiffel Tower!", "eiffel tower"),
    ("an apple, a pear & the plum.", "apple pear plum"),
    ("Theatre", "theatre"),  # an article only as a whole word
    ("  U.S.A.  ", "usa"),
    ("", ""),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_ruler_postprocess_strips_and_replaces_control_characters():
    assert ruler_postprocess("  \x00a\tb\x1fc\n ") == "a\nb\nc"


# ---------------------------------------------------------------------------------- answer metrics
def test_exact_match():
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["eiffel tower"]) == 0.0
    assert exact_match("Paris", ["London", "paris!"]) == 1.0  # any reference


def test_f1_worked_examples():
    # pred tokens [cat, sat, on, mat], ref [cat, on, mat]: common 3, P = 3/4, R = 1, F1 = 6/7
    assert f1("The cat sat on mat", ["a cat on the mat"]) == pytest.approx(6 / 7)
    # multiset intersection: pred [x, x, y], ref [x, y, y] share one x and one y: P = R = 2/3
    assert f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert f1("nothing shared", ["other words"]) == 0.0
    assert f1("", ["anything"]) == 0.0
    # max over references: 0.0 against the first, P = 1, R = 1/2 against the second
    assert f1("blue", ["red", "blue sky"]) == pytest.approx(2 / 3)


def test_subspan_em():
    assert subspan_em("I think it is the Eiffel Tower, in Paris.", ["Eiffel tower"]) == 1.0
    assert exact_match("I think it is the Eiffel Tower, in Paris.", ["Eiffel tower"]) == 0.0
    assert subspan_em("Eiffel", ["Eiffel Tower"]) == 0.0
    assert subspan_em("the answer is 42", ["41", "42"]) == 1.0


def test_ruler_all_and_part():
    refs = ["1234567", "7654321", "ABC"]
    # two of three found, case-insensitive
    assert ruler_all("Numbers: 1234567 and abc.", refs) == pytest.approx(2 / 3)
    assert ruler_part("Numbers: 1234567 and abc.", refs) == 1.0
    assert ruler_all("none here", refs) == 0.0
    assert ruler_part("none here", refs) == 0.0
    # RULER replaces control characters with newlines before matching
    assert ruler_all("first\tsecond", ["first\nsecond"]) == 1.0
    assert ruler_part("first second", ["first\nsecond"]) == 0.0


def test_rouge_l_worked_example():
    # 7 prediction tokens, 6 reference tokens, LCS 6: P = 6/7, R = 1, F = 12/13
    assert rouge_l("The cat was found under the bed.", ["the cat was under the bed"]) == pytest.approx(12 / 13)
    assert rouge_l("", ["anything"]) == 0.0
    assert rouge_l("!!!", ["?"]) == 0.0


ROUGE_PAIRS = [
    ("the cat sat on the mat", ["the cat is on the mat"]),
    ("police killed the gunman", ["the gunman was shot down by police", "police kill the gunman"]),
    ("A B C D E F", ["a x b y c z"]),
    ("Café au lait, s'il vous plaît!", ["cafe au lait"]),
    ("numbers 12 345 6789 and 12-345", ["12345 6789", "number 12"]),
    ("repeat repeat repeat word", ["word repeat", "repeat word repeat"]),
    ("", ["empty prediction"]),
    ("only punctuation ... !!!", ["???"]),
    ("UPPER lower MiXeD", ["upper MIXED lower"]),
    ("über straße naïve ĳ", ["uber strasse naive"]),
    ("line\nbreaks\tand  spaces", ["line breaks and spaces"]),
    ("the quick brown fox jumps over the lazy dog " * 3, ["a quick brown dog jumps over the lazy fox"]),
    ("İstanbul is large", ["istanbul"]),
    ("x", ["y", "z", "x"]),
]


@pytest.mark.parametrize(("prediction", "references"), ROUGE_PAIRS)
def test_rouge_l_matches_rouge_score_package(prediction, references):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    expected = scorer.score_multi(references, prediction)["rougeL"].fmeasure
    assert rouge_l(prediction, references) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("fn", [exact_match, f1, subspan_em, ruler_all, ruler_part, rouge_l])
def test_answer_metrics_need_references(fn):
    with pytest.raises(ValueError, match="references is empty"):
        fn("x", [])
    with pytest.raises(TypeError):
        fn("x", "x")


# ------------------------------------------------------------------------------- retrieval recall
def _case(answer="", chunks=(), retrieval=True, **kw) -> CaseResult:
    retrieved = [RetrievedChunk(chunk_id=f"c{i}", doc_id=d, start=s, end=e, score=1.0, rank=i)
                 for i, (d, s, e) in enumerate(chunks)]
    return CaseResult(case_id="c", question_id="q", endpoint="e", strategy="rag", strategy_name="rag",
                      answer=answer, retrieved=retrieved,
                      metadata={"retrieval": True} if retrieval else {}, **kw)


def _question(answers=("Paris",), evidence=()) -> Question:
    return Question(id="q", question="Where?", answers=list(answers), evidence=list(evidence))


def test_retrieval_recall_with_spans():
    q = _question(evidence=[Evidence(doc_id="d1", start=10, end=20), Evidence(doc_id="d2"),
                            Evidence(doc_id="d3", start=100, end=110)])
    # d1 [0,10) only touches [10,20): not found; d3 [110,200) starts where the evidence ends: not found
    assert retrieval_recall(_case(chunks=[("d1", 0, 10), ("d3", 110, 200)]), q) == 0.0
    # d1 [19,40) overlaps by one character; d2 has no span, any chunk of it counts
    assert retrieval_recall(_case(chunks=[("d1", 19, 40), ("d2", 500, 600), ("d3", 110, 200)]), q) == \
        pytest.approx(2 / 3)
    assert retrieval_recall(_case(chunks=[("d1", 0, 1000), ("d2", 0, 5), ("d3", 109, 110)]), q) == 1.0
    # a chunk of another document with the right offsets does not count
    assert retrieval_recall(_case(chunks=[("dX", 10, 20)]), q) == 0.0


def test_retrieval_recall_empty_span_is_a_point():
    q = _question(evidence=[Evidence(doc_id="d1", start=50, end=50)])
    assert retrieval_recall(_case(chunks=[("d1", 40, 51)]), q) == 1.0
    assert retrieval_recall(_case(chunks=[("d1", 40, 50)]), q) == 0.0


def test_retrieval_recall_is_none_when_it_does_not_apply():
    with_evidence = _question(evidence=[Evidence(doc_id="d1")])
    assert retrieval_recall(_case(chunks=[("d1", 0, 5)], retrieval=False), with_evidence) is None
    assert retrieval_recall(_case(chunks=[("d1", 0, 5)]), _question(evidence=[])) is None
    not_true = _case(chunks=[("d1", 0, 5)])
    not_true.metadata["retrieval"] = "yes"
    assert retrieval_recall(not_true, with_evidence) is None
    assert retrieval_recall(_case(chunks=[]), with_evidence) == 0.0


# --------------------------------------------------------------------------------- ranking metrics
RANKED = ["d3", "d1", "d3", "d5", "d2"]  # distinct order: d3, d1, d5, d2
GOLD = ["d1", "d2"]


def test_recall_and_mrecall_at_k():
    assert recall_at_k(RANKED, GOLD, 1) == 0.0
    assert recall_at_k(RANKED, GOLD, 2) == 0.5
    assert recall_at_k(RANKED, GOLD, 3) == 0.5  # the repeated d3 does not take a slot
    assert recall_at_k(RANKED, GOLD, 4) == 1.0
    assert mrecall_at_k(RANKED, GOLD, 1) == 0.0
    assert mrecall_at_k(RANKED, GOLD, 2) == 0.0
    assert mrecall_at_k(RANKED, GOLD, 4) == 1.0
    assert mrecall_at_k(["d1", "x"], ["d1", "d2", "d3"], 1) == 1.0  # min(k, |gold|) = 1


def test_mrr_and_ndcg():
    assert mrr(RANKED, GOLD) == 0.5
    assert mrr(RANKED, GOLD, 1) == 0.0
    assert mrr(["d2"], GOLD) == 1.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at_k(RANKED, GOLD, 4) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, GOLD, 2) == pytest.approx((1 / math.log2(3)) / ideal)
    assert ndcg_at_k(RANKED, GOLD, 1) == 0.0
    assert ndcg_at_k(["d1", "d2"], GOLD, 10) == pytest.approx(1.0)
    # one gold document at rank 1 out of k=3: the ideal has only one relevant slot
    assert ndcg_at_k(["x", "d1"], ["d1"], 3) == pytest.approx(1 / math.log2(3))


@pytest.mark.parametrize("fn", [recall_at_k, mrecall_at_k, mrr, ndcg_at_k])
def test_ranking_metrics_reject_empty_gold_and_bad_k(fn):
    with pytest.raises(ValueError, match="gold_doc_ids is empty"):
        fn(["a"], [], 3)
    with pytest.raises(ValueError, match="k must be at least 1"):
        fn(["a"], ["a"], 0)


# ---------------------------------------------------------------------------------------- registry
def test_registry_names_and_kinds():
    assert [n for n in SCORERS if registry.get("scorer", n).source == "ctxeval"] == [
        "exact_match", "f1", "subspan_em", "ruler_all", "ruler_part", "rouge_l",
                             "best_subspan_em", "choice", "longbench_qa_f1", "longbench_qa_f1_zh", "longbench_rouge",
                             "longbench_rouge_zh", "longbench_classification", "longbench_retrieval",
                             "longbench_retrieval_zh", "longbench_count", "longbench_code_sim", "longbench",
                             "infinitebench", "retrieval_recall", "recall_at_k", "mrr", "ndcg"]
    retrieval = {"retrieval_recall", "recall_at_k", "mrr", "ndcg"}
    assert {s.kind for n, s in SCORERS.items() if n not in retrieval} == {"answer"}
    assert {SCORERS[n].kind for n in retrieval} == {"retrieval"}
    assert all(s.name == n for n, s in SCORERS.items())


def test_get_scorer_unknown_lists_valid_names():
    with pytest.raises(UserInputError) as info:
        get_scorer("bleu")
    assert "bleu" in str(info.value)
    for name in SCORERS:
        assert name in str(info.value)


def test_scorer_scores_a_case_and_skips_questions_without_answers():
    case = _case(answer="It is Paris.", chunks=[("d1", 0, 10)])
    q = _question(answers=["Paris"], evidence=[Evidence(doc_id="d1", start=0, end=4)])
    assert get_scorer("subspan_em").score(case, q) == 1.0
    assert get_scorer("exact_match").score(case, q) == 0.0
    assert get_scorer("exact_match").score(case, _question(answers=[])) is None
    # f1: "it is paris" against "paris": P = 1/3, R = 1, F1 = 1/2
    assert score_case(case, q, ["f1", "retrieval_recall", "ruler_part"]) == {
        "f1": 0.5, "retrieval_recall": 1.0, "ruler_part": 1.0}
    with pytest.raises(UserInputError):
        score_case(case, q, ["f1", "nope"])


# ------------------------------------------------------------------------------------ ctxeval score
def _write(tmp_path, lines):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_score_command_scores_each_line_in_order(tmp_path):
    path = _write(tmp_path, [
        json.dumps({"prediction": "The cat sat on mat", "references": ["a cat on the mat"]}),
        "",  # blank lines are skipped
        json.dumps({"prediction": "nothing", "references": ["x", "y"]}),
        json.dumps({"prediction": "line\u2028separator", "references": ["separator"]}),
    ])
    result = CliRunner().invoke(cli, ["score", "--metric", "f1", "--input", str(path)])
    assert result.exit_code == 0, result.output
    scores = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    assert scores == pytest.approx([6 / 7, 0.0, 2 / 3])


def test_score_command_reads_stdin():
    data = json.dumps({"prediction": "A B", "references": ["b"]}) + "\n"
    result = CliRunner().invoke(cli, ["score", "--metric", "ruler_part", "--input", "-"], input=data)
    assert result.exit_code == 0, result.output
    assert [json.loads(x) for x in result.stdout.splitlines()] == [{"score": 1.0}]


@pytest.mark.parametrize(("bad", "problem"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"references": ["x"]}), "'prediction' is missing"),
    (json.dumps({"prediction": 3, "references": ["x"]}), "'prediction' must be a string, got int"),
    (json.dumps({"prediction": "x", "references": "x"}), "'references' must be a list of strings"),
    (json.dumps({"prediction": "x", "references": []}), "'references' is empty"),
    (json.dumps({"prediction": "x"}), "'references' is missing"),
    (json.dumps({"prediction": "x", "references": ["a", 2]}), "'references' must be a list of strings"),
])
def test_score_command_bad_line(tmp_path, bad, problem):
    good = json.dumps({"prediction": "x", "references": ["x"]})
    path = _write(tmp_path, [good, good, bad])
    result = CliRunner().invoke(cli, ["score", "--metric", "exact_match", "--input", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert "line 3" in result.stderr
    assert problem in result.stderr
    assert result.stdout == ""  # nothing printed before the file is known good


def test_score_command_rejects_unknown_and_retrieval_metrics(tmp_path):
    path = _write(tmp_path, [json.dumps({"prediction": "x", "references": ["x"]})])
    for metric in ("bleu", "retrieval_recall"):
        result = CliRunner().invoke(cli, ["score", "--metric", metric, "--input", str(path)])
        assert result.exit_code == 2
        assert "rouge_l" in result.stderr and "ruler_all" in result.stderr
    missing = CliRunner().invoke(cli, ["score", "--metric", "f1", "--input", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2
    assert "none.jsonl" in missing.stderr and "not found" in missing.stderr


# ------------------------------------------------------------------------------------ multiple choice
def _longbench_v2_extract_answer(response):
    """LongBench v2 ``pred.py`` ``extract_answer``, as published, to compare against."""
    response = response.replace("*", "")
    match = re.search(r"The correct answer is \(([A-D])\)", response)
    if match:
        return match.group(1)
    match = re.search(r"The correct answer is ([A-D])", response)
    if match:
        return match.group(1)
    return None


LONGBENCH_V2_REPLIES = [
    "The correct answer is (B)",
    "The correct answer is B",
    "**The correct answer is (C)**",
    "Having read the text, *The correct answer is* (D).",
    "The correct answer is (A). The correct answer is (B)",  # first match wins
    "The correct answer is Daniel",  # LongBench reads D here; kept
    "the correct answer is (B)",  # case-sensitive in the original: no match
    "The correct answer is (E)",  # only A-D for four options
    "I cannot tell.",
    "The correct answer is: B",  # no match in the original
]


@pytest.mark.parametrize("reply", LONGBENCH_V2_REPLIES)
def test_choice_reproduces_longbench_v2_extraction(reply):
    original = _longbench_v2_extract_answer(reply)
    if original is not None:
        assert extract_choice(reply) == original
        assert choice(reply, [original]) == 1.0
    else:  # the fallback reads only a reply that is a letter alone or a marked letter
        assert extract_choice(reply) in (None, *[c for c in "ABCD" if reply.strip().rstrip(".").endswith(c)])


@pytest.mark.parametrize(("reply", "letter"), [
    ("B", "B"), ("(C)", "C"), ("D.", "D"), ("b) Paris", "B"), ("(a) Lyon", "A"), ("Answer: C", "C"),
    ("Answer is D.", "D"), ("**B**", "B"), ("A. Lyon", "A"),
    ("a", None), ("A lot of people think so", None), ("I think it is A", None), ("E", None),
])
def test_choice_bare_letter_fallback(reply, letter):
    assert extract_choice(reply) == letter


def test_choice_options_beyond_d_and_choice_texts():
    six = ["red", "green", "blue", "black", "white", "pink"]
    assert extract_choice("The correct answer is (F)", choices=six) == "F"
    assert extract_choice("The correct answer is (F)") is None  # four options: A-D as in LongBench v2
    assert choice("E", ["E"], six) == 1.0
    assert extract_choice("Blue.", choices=six) == "C"  # the reply is one option's text
    assert choice("green", ["B"], six) == 1.0
    assert choice("The correct answer is (B)", ["green"], six) == 1.0  # reference given as the option text
    assert choice("The correct answer is (A)", ["B"]) == 0.0
    assert choice("", ["B"]) == 0.0
    with pytest.raises(ValueError, match="no option letter"):
        choice("A", ["Paris"])


def test_choice_scorer_reads_the_question_choices():
    q = Question(id="mc1", question="Which colour?", answers=["C"],
                 metadata={"choices": ["red", "green", "blue", "black", "white"]})
    case = CaseResult(case_id="c", question_id="mc1", endpoint="e", strategy="s", strategy_name="s", answer="blue")
    assert SCORERS["choice"].score(case, q) == 1.0
    assert SCORERS["choice"].score(case.model_copy(update={"answer": "The correct answer is (E)"}), q) == 0.0


def test_unanswered_cases_score_zero_on_every_answer_scorer():
    q = Question(id="q", question="Which?", answers=["A"], evidence=[])
    for outcome in (Outcome.over_window, Outcome.error, Outcome.no_answer, Outcome.cancelled):
        case = CaseResult(case_id="c", question_id="q", endpoint="e", strategy="s", strategy_name="s",
                          answer="", outcome=outcome)
        scores = score_case(case, q, ["exact_match", "subspan_em", "choice", "f1"])
        assert scores == {"exact_match": 0.0, "subspan_em": 0.0, "choice": 0.0, "f1": 0.0}, outcome
    # the SQuAD metrics themselves keep the reference behaviour on "A" (they are refused at validation)
    assert exact_match("", ["A"]) == 1.0 and subspan_em("anything", ["A"]) == 1.0


def test_validation_refuses_a_reference_that_normalises_to_nothing():
    questions = [Question(id="ok", question="?", answers=["Paris"]),
                 Question(id="lb-17", question="Which?", answers=["A"])]
    with pytest.raises(UserInputError) as info:
        check_references(questions, ["exact_match"])
    msg = str(info.value)
    assert "lb-17" in msg and "'A'" in msg and "choice" in msg
    for name in ("f1", "subspan_em"):
        with pytest.raises(UserInputError):
            check_references(questions, [name])
    check_references(questions[1:], ["choice", "ruler_part"])  # letters are fine for these
    with pytest.raises(UserInputError, match="rouge_l"):
        check_references([Question(id="x", question="?", answers=["!!"])], ["rouge_l"])
    with pytest.raises(UserInputError, match="names an option"):
        check_references([Question(id="x", question="?", answers=["Paris"])], ["choice"])
