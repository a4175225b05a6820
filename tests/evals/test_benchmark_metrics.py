"""LongBench and InfiniteBench metrics against the originals' own functions.

``tests/data/originals/`` holds LongBench's ``metrics.py`` and ``eval.py`` and InfiniteBench's
``compute_scores.py`` as published; they import the packages LongBench installs (rouge, jieba,
fuzzywuzzy), which are development dependencies here.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from pathlib import Path

import pytest

from evals import benchmark_metrics as bm
from evals.domain import CaseResult, Question
from evals.scorers import get_scorer

ORIGINALS = Path(__file__).parents[1] / "data" / "originals"


def _load(name: str, file: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, ORIGINALS / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fuzzywuzzy warns that python-Levenshtein is missing
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lb() -> types.ModuleType:
    return _load("longbench_metrics", "LongBench_metrics.py")


@pytest.fixture(scope="module")
def lb_eval(lb: types.ModuleType) -> types.ModuleType:
    saved = sys.modules.get("metrics")
    sys.modules["metrics"] = lb  # eval.py does `from metrics import ...`
    try:
        return _load("longbench_eval", "LongBench_eval.py")
    finally:
        if saved is None:
            sys.modules.pop("metrics", None)
        else:
            sys.modules["metrics"] = saved


EN_PAIRS = [
    ("The cat sat on the mat.", "A cat sat on a mat"),
    ("Paris, France.", "Paris"),
    ("paris", "Paris"),
    ("", "Paris"),
    ("...", "Paris"),
    ("The report finds that costs rose. Agencies lack data. The report recommends audits.",
     "Costs rose sharply. The agencies did not have data. Audits were recommended by the report."),
    ("one two three two one. three two", "two one three. one one two"),
    ("a . b", "a b"),
    ("x  y .  z", "z y x"),
    ("The answer is 7 and 7 again, not 3", "7"),
    ("Paragraph 12 is the one; maybe 12", "Paragraph 12"),
    ("It is Paragraph 3.", "Paragraph 12"),
]
ZH_PAIRS = [
    ("北京是中国的首都。", "中国的首都是北京"),
    ("会议讨论了预算问题，并决定下周再议。", "会议决定下周继续讨论预算。"),
    ("答案是段落5", "段落5"),
    ("我不知道", "上海"),
    ("", "上海"),
]


@pytest.mark.parametrize(("pred", "gold"), EN_PAIRS)
def test_english_metrics_equal_longbench(lb: types.ModuleType, pred: str, gold: str) -> None:
    assert bm.qa_f1_score(pred, gold) == lb.qa_f1_score(pred, gold)
    assert bm.rouge_score(pred, gold) == lb.rouge_score(pred, gold)
    assert bm.count_score(pred, gold) == lb.count_score(pred, gold)
    assert bm.code_sim_score(pred, gold) == lb.code_sim_score(pred, gold)
    if "Paragraph" in gold:
        assert bm.retrieval_score(pred, gold) == lb.retrieval_score(pred, gold)


@pytest.mark.parametrize(("pred", "gold"), ZH_PAIRS)
def test_chinese_metrics_equal_longbench(lb: types.ModuleType, pred: str, gold: str) -> None:
    assert bm.qa_f1_zh_score(pred, gold) == lb.qa_f1_zh_score(pred, gold)
    assert bm.rouge_zh_score(pred, gold) == lb.rouge_zh_score(pred, gold)
    if "段落" in gold:
        assert bm.retrieval_zh_score(pred, gold) == lb.retrieval_zh_score(pred, gold)


def test_rouge_is_the_rouge_packages_not_rouge_score(lb: types.ModuleType) -> None:
    # the audit's worked examples: rouge-score gives 0.667 and 1.0 where LongBench's py-rouge gives 0
    assert bm.rouge_score("Paris, France.", "Paris") == lb.rouge_score("Paris, France.", "Paris")
    assert bm.rouge_score("paris", "Paris") == 0.0 == lb.rouge_score("paris", "Paris")
    assert bm.rouge_score("", "x") == 0.0  # the package raises on an empty hypothesis; LongBench returns 0


def test_code_similarity_takes_the_first_plain_line(lb: types.ModuleType) -> None:
    pred = "\n```python\n# comment\n    return a + b\nprint(x)"
    gold = "    return a + b"
    assert bm.code_sim_score(pred, gold) == lb.code_sim_score(pred, gold) == 1.0  # fence and comment skipped
    pred2 = "\n    return a+b\n"
    assert bm.code_sim_score(pred2, gold) == lb.code_sim_score(pred2, gold)
    long_a, long_b = "x = foo(bar, baz) + qux * 3 " * 12, "x = foo(bar, baz) - quux * 3 " * 12
    assert bm.code_sim_score(long_a, long_b) == lb.code_sim_score(long_a, long_b)  # difflib's autojunk at ≥200


CLASSES = ["Abbreviation", "Animal", "Description", "Entity", "Human being", "Location", "Numeric value",
           "Other location", "Other number", "Expression abbreviated"]


@pytest.mark.parametrize("pred", ["Location", "Other location", "Location or Other location", "Human being",
                                  "Abbreviation, Expression abbreviated", "nothing", "Numeric value Other number"])
@pytest.mark.parametrize("gold", ["Location", "Other location", "Abbreviation", "Expression abbreviated"])
def test_classification_equals_longbench_with_its_list_quirk(lb: types.ModuleType, pred: str, gold: str) -> None:
    assert bm.classification_score(pred, gold, all_classes=CLASSES) == \
        lb.classification_score(pred, gold, all_classes=CLASSES)


@pytest.mark.parametrize(("dataset", "pred", "answers"), [
    ("trec", "Location\nHuman being", ["Location"]),
    ("trec", "\n\nHuman being\nLocation", ["Location"]),
    ("triviaqa", "Paris\nThe capital of France is Paris.", ["Paris", "paris, france"]),
    ("samsum", "Tom will call Ann.\nAnn agrees.", ["Tom is going to call Ann."]),
    ("lsht", "体育\n财经", ["体育"]),
    ("hotpotqa", "no idea\nParis", ["Paris"]),
    ("gov_report", "Costs rose. Audits help.", ["Costs rose sharply.", "Audits were recommended."]),
    ("multifieldqa_zh", "北京是首都", ["北京", "中国北京"]),
    ("passage_count", "There are 7 unique paragraphs", ["7"]),
    ("passage_retrieval_en", "Paragraph 4", ["Paragraph 4"]),
    ("passage_retrieval_zh", "段落4", ["段落4"]),
    ("lcc", "    return x\n", ["    return x"]),
    ("dureader", "北京是中国的首都。", ["中国的首都是北京", "北京"]),
    ("vcsum", "会议讨论了预算。", ["会议决定下周继续讨论预算。"]),
])
def test_dataset_score_equals_eval_py_scorer(lb_eval: types.ModuleType, dataset: str, pred: str,
                                             answers: list[str]) -> None:
    classes = CLASSES if dataset == "trec" else ["体育", "财经"]
    expected = lb_eval.scorer(dataset, [pred], [answers], classes)  # rounded percent
    ours = bm.longbench_score(dataset, pred, answers, classes)
    assert round(100 * ours, 2) == expected


def test_longbench_scorer_reads_dataset_and_classes_from_the_question() -> None:
    q = Question(id="q", question="What type?", answers=["Location"],
                 metadata={"dataset": "trec", "all_classes": CLASSES})
    case = CaseResult(case_id="c", question_id="q", endpoint="e", strategy="s", strategy_name="s",
                      answer="Location\nHuman being")
    assert get_scorer("longbench").score(case, q) == 1.0
    assert get_scorer("longbench_classification").score(case, q) == 0.5  # no first-line rule by itself


@pytest.fixture(scope="module")
def ib() -> types.ModuleType:
    fake_evaluate = types.ModuleType("evaluate")  # only longbook_sum_eng needs HF evaluate's rouge
    fake_evaluate.load = lambda *a, **k: None  # type: ignore[attr-defined]
    fake_args = types.ModuleType("args")  # its command-line parser, unused by the score functions
    fake_args.parse_args = lambda *a, **k: None  # type: ignore[attr-defined]
    saved = {n: sys.modules.get(n) for n in ("evaluate", "args")}
    sys.modules.update({"evaluate": fake_evaluate, "args": fake_args})
    try:
        return _load("ib_compute_scores", "InfiniteBench_compute_scores.py")
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


@pytest.mark.parametrize(("task", "pred", "label", "orig_label"), [
    ("passkey", "The pass key is 71432.", ["71432"], ["71432"]),
    ("passkey", "It is 1234 or 71432", ["71432"], ["71432"]),
    ("number_string", "9876543210", ["9876543210"], ["9876543210"]),
    ("kv_retrieval", 'The value is "abc-123".', ["abc-123"], "abc-123"),
    ("kv_retrieval", "abc-1234", ["abc-123"], "abc-123"),
    ("code_run", "The return value is: 42", ["42"], 42),
    ("code_run", "-7", ["-7"], -7),
    ("code_debug", "B. func_b", ["func_b", "B"], ["func_b", "B"]),
    ("code_debug", "I think the answer is: C", ["func_b", "B"], ["func_b", "B"]),
    ("math_find", "The largest is 97", ["97"], [97]),
    ("math_find", "3.5", ["3.5"], [3.5]),
    ("longdialogue_qa_eng", "It is probably hamlet.", ["HAMLET"], ["HAMLET"]),
    ("longbook_choice_eng", "B", ["the butler", "B"], ["the butler", "B"]),
    ("longbook_choice_eng", "I believe the answer is: the butler", ["the butler", "B"], ["the butler", "B"]),
    ("longbook_choice_eng", "Maybe D then", ["the butler", "B"], ["the butler", "B"]),
    ("longbook_qa_eng", "He went to the sea", ["the sea", "ocean"], ["the sea", "ocean"]),
    ("longbook_qa_chn", "他去了海边", ["海边"], ["海边"]),
])
def test_infinitebench_metrics_equal_compute_scores(ib: types.ModuleType, task: str, pred: str, label: list[str],
                                                    orig_label: object) -> None:
    assert bm.INFINITEBENCH_METRICS[task](pred, label) == ib.get_score_one(pred, orig_label, task, "gpt4")
