"""Benchmark metrics reproduced from their originals: LongBench v1 and InfiniteBench.

LongBench (THUDM/LongBench ``LongBench/metrics.py`` and ``LongBench/eval.py``): every function here
returns what the original returns for one (prediction, ground truth) pair; ``longbench_score`` takes
the maximum over the references starting from 0, as ``eval.py``'s ``scorer`` does, after the first-line
rule for trec, triviaqa, samsum and lsht. ROUGE-L is the ``rouge`` package's (``from rouge import Rouge``
in ``metrics.py``: summary-level union LCS over sentences split at ``.``, with word *sets*), rewritten
here step by step; code similarity is fuzzywuzzy's ``fuzz.ratio`` on difflib (LongBench's requirements
install fuzzywuzzy without python-Levenshtein); Chinese metrics segment with jieba.

InfiniteBench (OpenBMB/InfiniteBench ``src/compute_scores.py``): the per-task ``get_score_one_*``
functions of the tasks that need no code execution and no model-specific rule.
"""

from __future__ import annotations

import difflib
import logging
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------------------- normalisation
_ZH_PUNCT = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
_EN_PUNCT = frozenset(string.punctuation)
_ALL_PUNCT = frozenset(string.punctuation + _ZH_PUNCT)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """LongBench/InfiniteBench ``normalize_answer``: lower, drop punctuation, drop articles, fix spaces."""
    s = "".join(ch for ch in s.lower() if ch not in _EN_PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def normalize_zh_answer(s: str) -> str:
    """``normalize_zh_answer``: lower, drop English and Chinese punctuation, remove every space."""
    return "".join("".join(ch for ch in s.lower() if ch not in _ALL_PUNCT).split())


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba  # a dependency; its dictionary ships in the wheel

    jieba.setLogLevel(logging.WARNING)  # it logs "Building prefix dict" to stderr otherwise
    return jieba


def jieba_cut(text: str) -> list[str]:
    """``list(jieba.cut(text, cut_all=False))``."""
    return list(_jieba().cut(text, cut_all=False))


# ------------------------------------------------------------------------------------------- LongBench
def _f1_tokens(prediction: Sequence[str], ground_truth: Sequence[str]) -> float:
    common = Counter(prediction) & Counter(ground_truth)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction)
    recall = 1.0 * num_same / len(ground_truth)
    return (2 * precision * recall) / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return _f1_tokens(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def qa_f1_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    pred = [t for t in (normalize_zh_answer(x) for x in jieba_cut(prediction)) if len(t) > 0]
    gold = [t for t in (normalize_zh_answer(x) for x in jieba_cut(ground_truth)) if len(t) > 0]
    return _f1_tokens(pred, gold)


def count_score(prediction: str, ground_truth: str, **_: Any) -> float:
    numbers = re.findall(r"\d+", prediction)
    right = sum(1 for n in numbers if str(n) == str(ground_truth))
    return 0.0 if len(numbers) == 0 else float(right / len(numbers))


def _retrieval(prediction: str, ground_truth: str, pattern: str) -> float:
    gold_id = re.findall(pattern, ground_truth)[0]  # IndexError on a malformed reference, as the original
    numbers = re.findall(r"\d+", prediction)
    right = sum(1 for n in numbers if str(n) == str(gold_id))
    return 0.0 if len(numbers) == 0 else float(right / len(numbers))


def retrieval_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return _retrieval(prediction, ground_truth, r"Paragraph (\d+)")


def retrieval_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return _retrieval(prediction, ground_truth, r"段落(\d+)")


def fuzz_ratio(s1: str, s2: str) -> int:
    """fuzzywuzzy 0.18 ``fuzz.ratio`` without python-Levenshtein: equal strings 100, an empty one 0,
    else ``int(round(100 * difflib.SequenceMatcher(None, s1, s2).ratio()))``."""
    if s1 == s2:
        return 100
    if len(s1) == 0 or len(s2) == 0:
        return 0
    return int(round(100 * difflib.SequenceMatcher(None, s1, s2).ratio()))


def code_sim_score(prediction: str, ground_truth: str, **_: Any) -> float:
    chosen = ""
    for line in prediction.lstrip("\n").split("\n"):
        if ("`" not in line) and ("#" not in line) and ("//" not in line):
            chosen = line
            break
    return fuzz_ratio(chosen, ground_truth) / 100


def classification_score(prediction: str, ground_truth: str, *, all_classes: Sequence[str] | None = None,
                         **_: Any) -> float:
    if all_classes is None:
        raise ValueError("longbench_classification needs the question's all_classes")
    em_match_list = [c for c in all_classes if c in prediction]
    # the original removes from the list it iterates over, which skips the element after each removal
    for match_term in em_match_list:
        if match_term in ground_truth and match_term != ground_truth:
            em_match_list.remove(match_term)
    if ground_truth in em_match_list:
        return 1.0 / len(em_match_list)
    return 0.0


# ----------------------------------------------------------------- the `rouge` package's ROUGE-L (f)
def _sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in text.split(".") if len(s) > 0]


def _words(sentences: Sequence[str]) -> list[str]:
    return [w for s in sentences for w in s.split(" ")]


def _lcs_words(x: list[str], y: list[str]) -> set[str]:
    """The words of the LCS of x and y that ``rouge``'s ``_recon_lcs`` walks back to (as a set)."""
    n, m = len(x), len(y)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        xi, row, prev = x[i - 1], table[i], table[i - 1]
        for j in range(1, m + 1):
            row[j] = prev[j - 1] + 1 if xi == y[j - 1] else max(prev[j], row[j - 1])
    out: set[str] = set()
    i, j = n, m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def rouge_l_f(prediction: str, ground_truth: str) -> float:
    """``Rouge().get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"]``; raises ValueError
    where the package raises (a side with no sentence)."""
    hyp, ref = _sentences(prediction), _sentences(ground_truth)
    if len(hyp) <= 0 or len(ref) <= 0:
        raise ValueError("Collections must contain at least 1 sentence.")
    m = len(set(_words(ref)))
    n = len(set(_words(hyp)))
    union: set[str] = set()
    llcs = 0
    for ref_s in ref:
        before = len(union)
        ref_words = ref_s.split(" ")
        for hyp_s in hyp:
            union |= _lcs_words(ref_words, hyp_s.split(" "))
        llcs += len(union) - before
    r_lcs, p_lcs = llcs / m, llcs / n
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))


def rouge_score(prediction: str, ground_truth: str, **_: Any) -> float:
    try:
        return rouge_l_f(prediction, ground_truth)
    except (ValueError, ZeroDivisionError):  # LongBench catches every exception and returns 0.0
        return 0.0


def rouge_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    return rouge_score(" ".join(jieba_cut(prediction)), " ".join(jieba_cut(ground_truth)))


PairMetric = Callable[..., float]

LONGBENCH_METRICS: dict[str, PairMetric] = {
    "longbench_qa_f1": qa_f1_score,
    "longbench_qa_f1_zh": qa_f1_zh_score,
    "longbench_rouge": rouge_score,
    "longbench_rouge_zh": rouge_zh_score,
    "longbench_classification": classification_score,
    "longbench_retrieval": retrieval_score,
    "longbench_retrieval_zh": retrieval_zh_score,
    "longbench_count": count_score,
    "longbench_code_sim": code_sim_score,
}

DATASET2METRIC: dict[str, str] = {
    "narrativeqa": "longbench_qa_f1", "qasper": "longbench_qa_f1", "multifieldqa_en": "longbench_qa_f1",
    "multifieldqa_zh": "longbench_qa_f1_zh", "hotpotqa": "longbench_qa_f1", "2wikimqa": "longbench_qa_f1",
    "musique": "longbench_qa_f1", "dureader": "longbench_rouge_zh", "gov_report": "longbench_rouge",
    "qmsum": "longbench_rouge", "multi_news": "longbench_rouge", "vcsum": "longbench_rouge_zh",
    "trec": "longbench_classification", "triviaqa": "longbench_qa_f1", "samsum": "longbench_rouge",
    "lsht": "longbench_classification", "passage_retrieval_en": "longbench_retrieval",
    "passage_count": "longbench_count", "passage_retrieval_zh": "longbench_retrieval_zh",
    "lcc": "longbench_code_sim", "repobench-p": "longbench_code_sim",
}
"""``dataset2metric`` of LongBench/eval.py (LongBench-E datasets end in ``_e`` and use the same)."""

FIRST_LINE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht"})


def longbench_dataset(name: str) -> str:
    return name[:-2] if name.endswith("_e") and name[:-2] in DATASET2METRIC else name


def max_over(metric: PairMetric, prediction: str, references: Sequence[str], **kw: Any) -> float:
    """``score = 0.; for gt in ground_truths: score = max(score, metric(pred, gt, **kw))``."""
    score = 0.0
    for gt in references:
        score = max(score, metric(prediction, gt, **kw))
    return score


def longbench_score(dataset: str, prediction: str, references: Sequence[str],
                    all_classes: Sequence[str] | None = None) -> float:
    """One prediction scored as LongBench/eval.py scores it for ``dataset`` (0..1, not ×100)."""
    ds = longbench_dataset(dataset)
    if ds not in DATASET2METRIC:
        raise ValueError(f"'{dataset}' is not a LongBench dataset; known: {', '.join(DATASET2METRIC)}")
    if ds in FIRST_LINE_DATASETS:
        prediction = prediction.lstrip("\n").split("\n")[0]
    return max_over(LONGBENCH_METRICS[DATASET2METRIC[ds]], prediction, references, all_classes=all_classes)


# ---------------------------------------------------------------------------------------- InfiniteBench
def _first_int(prediction: str) -> str:
    for item in re.split("[^0-9]", prediction):
        if item != "":
            return item
    return ""


def _words_of(pred: str, chars: str) -> list[str]:
    for c in chars:
        pred = pred.replace(c, " ")
    return pred.split()


def ib_kv_retrieval(pred: str, label: Sequence[str]) -> float:
    return float(label[0] in _words_of(pred, "\n:\"'.,?!{}"))


def ib_passkey(pred: str, label: Sequence[str]) -> float:
    return float(label[0] == _first_int(pred))


def ib_code_run(pred: str, label: Sequence[str]) -> float:
    words = _words_of(pred.strip(), "\n.`'\":")
    if not words:
        return 0.0
    try:
        return float(int(label[0]) == int(words[-1]))
    except ValueError:
        return 0.0


def ib_code_debug(pred: str, label: Sequence[str]) -> float:
    """``get_score_one_code_debug``; label = [function name, option letter]."""
    pred = pred.strip()
    fn_name, label_c = label[0], label[1]
    if pred[:2] in [f"{label_c}.", f"{label_c}:"]:
        return 1.0
    pred = pred.strip()
    for c in ["\n", "`", "'", '"', "-", "*", "Option", "option"]:
        pred = pred.replace(c, " ")
    while "  " in pred:
        pred = pred.replace("  ", " ")
    for prefix in ["answer is:", "is:", "answer:", "correct option is:"]:
        idx = pred.find(prefix)
        if idx == -1:
            continue
        if len(pred) < idx + len(prefix) + 1:
            return 0.0
        rest = pred[idx + len(prefix) + 1:]
        return float(any(rest.startswith(s) for s in (label_c, fn_name)))
    return 0.0


def ib_math_find(pred: str, label: Sequence[str]) -> float:
    raw = label[0]
    found = re.search(r"\d+\.\d+|\d+", pred)
    if found is None:
        return 0.0
    number = found.group(0).strip()
    if re.fullmatch(r"-?\d+", raw.strip()):
        return float(int(number) == int(raw))
    return float(float(number) == float(raw))


def ib_longdialogue(pred: str, label: Sequence[str]) -> float:
    words = [x.upper() for x in _words_of(pred.strip(), "\n:\"'.,?!{}")]
    return float(label[0] in words)


def ib_choice(pred: str, label: Sequence[str]) -> float:
    """``get_score_one_longbook_choice_eng``; label = [option text, option letter]."""
    pred = pred.strip()
    if pred == "":
        return 0.0
    if pred[0] in "ABCD":
        return float(pred[0] in label)
    if pred in label:
        return 1.0
    for c in ["\n", '"', "'", ".", ",", "?", "!", "{", "}"]:
        pred = pred.replace(c, " ")
    while "  " in pred:
        pred = pred.replace("  ", " ")
    for prefix in ["answer is:", "answer:", "answer is", "option is"]:
        idx = pred.find(prefix)
        if idx == -1:
            continue
        if len(pred) < idx + len(prefix) + 1:
            return 0.0
        after = pred[idx + len(prefix) + 1:]
        return float(any(after.startswith(s) for s in label))
    for word in pred.split():
        if word in "ABCD":
            return float(word in label)
    return 0.0


def ib_qa_f1(pred: str, label: Sequence[str]) -> float:
    return max_over(qa_f1_score, pred, label)


def ib_qa_f1_zh(pred: str, label: Sequence[str]) -> float:
    """InfiniteBench's Chinese F1 counts characters (``list(norm)``), not jieba words."""
    score = 0.0
    for gt in label:
        score = max(score, _f1_tokens(list(normalize_zh_answer(pred)), list(normalize_zh_answer(gt))))
    return score


INFINITEBENCH_METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "kv_retrieval": ib_kv_retrieval, "passkey": ib_passkey, "number_string": ib_passkey,
    "code_run": ib_code_run, "code_debug": ib_code_debug, "math_find": ib_math_find,
    "longdialogue_qa_eng": ib_longdialogue, "longbook_choice_eng": ib_choice,
    "longbook_qa_eng": ib_qa_f1, "longbook_qa_chn": ib_qa_f1_zh,
}
"""``NAME_TO_SCORE_GETTER`` of InfiniteBench/src/compute_scores.py, less ``math_calc`` (its rule depends on
the model name) and ``longbook_sum_eng`` (HF ``evaluate``'s rougeLsum)."""
