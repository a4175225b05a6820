"""Scorers: answer metrics, retrieval recall and retrieval-ranking metrics.

Every answer metric is a plain function ``metric(prediction, references) -> float`` in 0..1 (the maximum
over references where the definition takes one), built on one shared normalisation helper. The
registry ``SCORERS`` wraps them as named ``Scorer`` objects that score a stored case against its
question. Exact definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from evals import benchmark_metrics as bm
from evals import registry
from evals.domain import CaseResult, Question
from evals.errors import UserInputError
from evals.registry import NoParams

# ------------------------------------------------------------------------------------ normalisation
_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CONTROL = re.compile(r"[\x00-\x1f]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def ruler_postprocess(prediction: str) -> str:
    """RULER's prediction clean-up: strip, control characters to newlines, strip again."""
    return _CONTROL.sub("\n", prediction.strip()).strip()


def rouge_tokenize(text: str) -> list[str]:
    """The ``rouge-score`` default tokenizer without stemming: lowercase ASCII alphanumeric runs."""
    return [t for t in _NON_ALNUM.split(text.lower()) if _VALID_TOKEN.match(t)]


def _need_refs(references: Sequence[str]) -> None:
    if isinstance(references, str):
        raise TypeError("references must be a list of strings, not a string")
    if not references:
        raise ValueError("references is empty: a metric needs at least one reference answer")


# ---------------------------------------------------------------------------------- answer metrics
def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference."""
    _need_refs(references)
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


def _token_f1(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(ref_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1 over normalised whitespace tokens; the best over references."""
    _need_refs(references)
    pred = normalize_answer(prediction).split()
    return max(_token_f1(pred, normalize_answer(r).split()) for r in references)


def subspan_em(prediction: str, references: Sequence[str]) -> float:
    """best_subspan_em (Lost in the Middle): a normalised reference occurs in the normalised prediction."""
    _need_refs(references)
    pred = normalize_answer(prediction)
    return float(any(normalize_answer(r) in pred for r in references))


def ruler_all(prediction: str, references: Sequence[str]) -> float:
    """RULER string_match_all for one case: the share of references found (case-insensitive)."""
    _need_refs(references)
    pred = ruler_postprocess(prediction).lower()
    return sum(1.0 for r in references if r.lower() in pred) / len(references)


def ruler_part(prediction: str, references: Sequence[str]) -> float:
    """RULER string_match_part for one case: 1.0 when any reference is found (case-insensitive)."""
    _need_refs(references)
    pred = ruler_postprocess(prediction).lower()
    return float(any(r.lower() in pred for r in references))


def _lcs_length(a: list[str], b: list[str]) -> int:
    if len(b) > len(a):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _rouge_l_one(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return 0.0
    lcs = _lcs_length(ref, pred)
    precision, recall = lcs / len(pred), lcs / len(ref)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure as ``rouge-score`` computes it (default tokenizer, no stemmer); best over references."""
    _need_refs(references)
    pred = rouge_tokenize(prediction)
    return max(_rouge_l_one(pred, rouge_tokenize(r)) for r in references)


# ------------------------------------------------------------------------------- multiple choice
_LETTERS = string.ascii_uppercase
_ANSWER_PREFIX = r"(?:answer(?:\s+is)?\s*[:：]?\s*)?"
_PAREN_LETTER = re.compile(rf"^{_ANSWER_PREFIX}\(([A-Za-z])\)(?:[.:]?\s.*)?$", re.IGNORECASE | re.DOTALL)
_MARKED_LETTER = re.compile(rf"^{_ANSWER_PREFIX}([A-Za-z])[.:)](?:\s.*)?$", re.IGNORECASE | re.DOTALL)
_LONE_LETTER = re.compile(rf"^{_ANSWER_PREFIX}([A-Z])\.?$", re.IGNORECASE)


def _letter_class(n_options: int) -> str:
    """The regex class of option letters: A-D as in LongBench v2, wider when a question has more."""
    return f"[A-{_LETTERS[max(4, min(n_options, 26)) - 1]}]"


def choice_texts(choices: Any) -> list[str]:
    """A question's options as a list (A first): a list of texts, or a mapping letter → text."""
    if isinstance(choices, dict):
        return [str(choices[k]) for k in sorted(choices, key=str)]
    if isinstance(choices, list | tuple):
        return [str(c) for c in choices]
    return []


def extract_choice(prediction: str, n_options: int = 4, choices: Sequence[str] = ()) -> str | None:
    r"""The option letter a response chose, or None.

    First LongBench v2's ``extract_answer`` (``pred.py``): remove every ``*``, then the first match
    of ``The correct answer is \(([A-D])\)``, else of ``The correct answer is ([A-D])``. Then
    ctxeval's fallback for replies that give the letter alone, optionally after ``Answer:`` or
    ``Answer is``: a letter in parentheses (``(B)``, ``(b) Paris``), a letter marked by ``.``, ``:``
    or ``)`` and optionally followed by the option's text (``B.``, ``b) Paris``, ``C: Nice``), or a
    capital letter alone (``B``; a lone ``a`` is read as the article). Last, when the question carries its
    options, a reply equal (SQuAD-normalised) to exactly one option's text chooses that option.
    Letters beyond D are read when the question has more than four options.
    """
    n = max(n_options, len(choices), 4)
    letters = _letter_class(n)
    response = prediction.replace("*", "")
    match = re.search(rf"The correct answer is \(({letters})\)", response)
    if match is None:
        match = re.search(rf"The correct answer is ({letters})", response)
    if match is not None:
        return match.group(1)
    text = response.strip()
    for pattern in (_PAREN_LETTER, _MARKED_LETTER, _LONE_LETTER):
        bare = pattern.match(text)
        if bare is None:
            continue
        letter = bare.group(1)
        # a lone lower-case "a" is the article, not option A: a lone letter must be a capital
        if pattern is _LONE_LETTER and not letter.isupper():
            continue
        if _LETTERS.index(letter.upper()) < n:
            return letter.upper()
    if choices:
        said = normalize_answer(response)
        hits = [i for i, c in enumerate(choices) if normalize_answer(c) == said and said]
        if len(hits) == 1:
            return _LETTERS[hits[0]]
    return None


def gold_letters(references: Sequence[str], choices: Sequence[str] = ()) -> set[str]:
    """The option letters the references name: a letter (``B``, ``(B)``), or an option's text."""
    n = max(len(choices), 4)
    out: set[str] = set()
    for ref in references:
        r = ref.strip().strip("()").strip()
        if len(r) == 1 and r.upper() in _LETTERS[:max(n, 26 if not choices else n)]:
            out.add(r.upper())
            continue
        said = normalize_answer(ref)
        for i, c in enumerate(choices):
            if said and normalize_answer(c) == said:
                out.add(_LETTERS[i])
    return out


def choice(prediction: str, references: Sequence[str], choices: Sequence[str] = ()) -> float:
    """1.0 when the letter the response chose (``extract_choice``) is a reference's letter."""
    _need_refs(references)
    gold = gold_letters(references, choices)
    if not gold:
        raise ValueError(f"no option letter in the references {list(references)!r}: give the letter (e.g. 'B') "
                         "or the text of one of the question's choices")
    n = max(len(choices), 4, *(_LETTERS.index(g) + 1 for g in gold))
    return float(extract_choice(prediction, n, choices) in gold)


def question_choices(question: Question) -> list[str]:
    """The options a question carries: ``metadata["choices"]``, else LongBench v2's ``choice_A``…
    values among its ``metadata["template_vars"]``."""
    texts = choice_texts(question.metadata.get("choices"))
    if texts:
        return texts
    tv = question.metadata.get("template_vars") or {}
    out = []
    for letter in _LETTERS:
        if f"choice_{letter}" not in tv:
            break
        out.append(str(tv[f"choice_{letter}"]))
    return out


def _choice_for(prediction: str, references: Sequence[str], question: Question | None = None) -> float:
    return choice(prediction, references, question_choices(question) if question is not None else ())


# ------------------------------------------------------------------------------- retrieval metrics
def _evidence_found(case: CaseResult, doc_id: str, start: int | None, end: int | None) -> bool:
    for chunk in case.retrieved:
        if chunk.doc_id != doc_id:
            continue
        if start is None or end is None:
            return True
        # An empty evidence span [s, s) counts as the single position s.
        if chunk.start < max(end, start + 1) and start < chunk.end:
            return True
    return False


def retrieval_recall(case: CaseResult, question: Question) -> float | None:
    """Share of the question's evidence items that the case's retrieved chunks cover.

    None when the question has no evidence or the case did not retrieve (``metadata["retrieval"]``).
    """
    if case.metadata.get("retrieval") is not True or not question.evidence:
        return None
    found = sum(_evidence_found(case, ev.doc_id, ev.start, ev.end) for ev in question.evidence)
    return found / len(question.evidence)


def _ranked(ranked_doc_ids: Sequence[str], gold_doc_ids: Sequence[str], k: int | None) -> tuple[list[str], set[str]]:
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    gold = set(gold_doc_ids)
    if not gold:
        raise ValueError("gold_doc_ids is empty: a ranking metric needs at least one relevant document")
    distinct = list(dict.fromkeys(ranked_doc_ids))  # several chunks of one document count once
    return (distinct if k is None else distinct[:k]), gold


def recall_at_k(ranked_doc_ids: Sequence[str], gold_doc_ids: Sequence[str], k: int) -> float:
    """|top-k ∩ gold| / |gold| over distinct document ids."""
    top, gold = _ranked(ranked_doc_ids, gold_doc_ids, k)
    return len(gold.intersection(top)) / len(gold)


def mrecall_at_k(ranked_doc_ids: Sequence[str], gold_doc_ids: Sequence[str], k: int) -> float:
    """1.0 when the top k hold min(k, |gold|) gold documents."""
    top, gold = _ranked(ranked_doc_ids, gold_doc_ids, k)
    return float(len(gold.intersection(top)) == min(k, len(gold)))


def mrr(ranked_doc_ids: Sequence[str], gold_doc_ids: Sequence[str], k: int | None = None) -> float:
    """Reciprocal rank (1-based) of the first gold document within the top k; 0.0 when none."""
    top, gold = _ranked(ranked_doc_ids, gold_doc_ids, k)
    return next((1.0 / (i + 1) for i, d in enumerate(top) if d in gold), 0.0)


def ndcg_at_k(ranked_doc_ids: Sequence[str], gold_doc_ids: Sequence[str], k: int) -> float:
    """nDCG@k with binary relevance: Σ rel_i / log2(i + 2) over the top k, over the ideal ordering."""
    top, gold = _ranked(ranked_doc_ids, gold_doc_ids, k)
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(top) if d in gold)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(gold))))
    return dcg / ideal


# ------------------------------------------------------------------------ ranking metrics on a case
RANK_K = 5  # k of ``recall_at_k`` and ``ndcg`` when the name gives none (``recall_at_k:10`` gives 10)


def retrieved_doc_ranking(case: CaseResult) -> list[str]:
    """Document ids of the case's retrieved chunks in retrieval rank order (not prompt order)."""
    return [c.doc_id for c in sorted(case.retrieved, key=lambda c: c.rank)]


# ---------------------------------------------------------------------------------------- registry
AnswerMetric = Callable[[str, Sequence[str]], float]
Family = Literal["answer", "retrieval", "model"]


class Scorer:
    """A scorer, registered with ``@evals.registry.scorer()`` and built with its validated ``Params``.

    ``score`` returns None when the case cannot be scored by it. A scorer with ``needs_model`` is graded
    by a model: the engine calls ``grade(case, question, llm)`` with a client of the judge endpoint
    instead (see ``evals.judge``). ``grades_answer`` is False for scorers that say nothing of the
    answer's correctness (retrieval metrics, faithfulness): attribution skips them.
    """

    name: ClassVar[str]
    kind: ClassVar[Family] = "answer"
    Params: ClassVar[type[BaseModel]] = NoParams
    needs_model: ClassVar[bool] = False

    def __init__(self, params: BaseModel, *, name: str | None = None) -> None:
        self.params = params
        self.name = name or type(self).name  # type: ignore[misc]
        self.description = registry.get("scorer", type(self).name).description

    @property
    def grades_answer(self) -> bool:
        return self.kind == "answer"

    def score(self, case: CaseResult, question: Question) -> float | None:
        raise NotImplementedError

    def metric(self) -> AnswerMetric:
        """The plain ``(prediction, references) -> float`` function of an answer scorer."""
        raise UserInputError(f"'{self.name}' is not an answer metric; it scores a case's retrieval")

    async def grade(self, case: CaseResult, question: Question, llm: Any) -> Any:
        """Model-graded scorers only: the verdict (``score``, ``error``, ``as_dict()``) on ``case``,
        asking the model through ``llm`` (``evals.strategies.base.LLM`` on the judge endpoint)."""
        raise NotImplementedError(f"scorer '{self.name}' is not graded by a model")


def default_scorers() -> list[str]:
    """The scorers a run gets when neither it nor its suite names any."""
    return [c.name for c in registry.components("scorer") if c.extra.get("default")]


def auto_retrieval_scorers() -> list[str]:
    """Scorers added to every run with a retrieving strategy on a suite with evidence."""
    return [c.name for c in registry.components("scorer") if c.extra.get("auto_for_retrieval")]


# ------------------------------------------------------------------- benchmark metrics (LongBench, …)
def _classes(question: Question | None, all_classes: Sequence[str] | None) -> Sequence[str] | None:
    if all_classes is not None:
        return all_classes
    value = question.metadata.get("all_classes") if question is not None else None
    return value if isinstance(value, list) else None


def _longbench_metric(name: str) -> Callable[..., float]:
    def metric(prediction: str, references: Sequence[str], question: Question | None = None, *,
               all_classes: Sequence[str] | None = None) -> float:
        _need_refs(references)
        return bm.max_over(bm.LONGBENCH_METRICS[name], prediction, references,
                           all_classes=_classes(question, all_classes))
    metric.__name__ = name
    return metric


def longbench(prediction: str, references: Sequence[str], question: Question | None = None, *,
              dataset: str | None = None, all_classes: Sequence[str] | None = None) -> float:
    """LongBench's metric for the question's dataset (``metadata.dataset``), first-line rule included."""
    _need_refs(references)
    ds = dataset or (question.metadata.get("dataset") or question.metadata.get("task") if question else None)
    if not isinstance(ds, str):
        raise UserInputError("the 'longbench' scorer needs the question's dataset (metadata.dataset)",
                             field="dataset")
    try:
        return bm.longbench_score(ds, prediction, references, _classes(question, all_classes))
    except ValueError as e:
        raise UserInputError(str(e), field="dataset") from None


def infinitebench(prediction: str, references: Sequence[str], question: Question | None = None, *,
                  task: str | None = None, **_: object) -> float:
    """InfiniteBench's metric for the question's task (``metadata.task``)."""
    _need_refs(references)
    name = task or (question.metadata.get("task") if question is not None else None)
    if name not in bm.INFINITEBENCH_METRICS:
        raise UserInputError(f"the 'infinitebench' scorer has no metric for task {name!r}; tasks: "
                             f"{', '.join(bm.INFINITEBENCH_METRICS)}", field="task")
    return bm.INFINITEBENCH_METRICS[name](prediction, references)


_LONGBENCH_DESCRIPTIONS = {
    "longbench_qa_f1": "LongBench qa_f1_score", "longbench_qa_f1_zh": "LongBench qa_f1_zh_score (jieba)",
    "longbench_rouge": "LongBench rouge_score (rouge package ROUGE-L F)",
    "longbench_rouge_zh": "LongBench rouge_zh_score (jieba, rouge package)",
    "longbench_classification": "LongBench classification_score (needs all_classes)",
    "longbench_retrieval": "LongBench retrieval_score", "longbench_retrieval_zh": "LongBench retrieval_zh_score",
    "longbench_count": "LongBench count_score", "longbench_code_sim": "LongBench code_sim_score (fuzz.ratio)",
}




def answer_scorer(name: str, description: str, *, order: int = 100,
                  **meta: Any) -> Callable[[AnswerMetric], AnswerMetric]:
    """Register a plain answer metric ``fn(prediction, references) -> float`` as scorer ``name``."""

    def wrap(fn: AnswerMetric) -> AnswerMetric:
        class _Answer(Scorer):
            kind = "answer"

            def score(self, case: CaseResult, question: Question) -> float | None:
                return fn(case.answer, question.answers) if question.answers else None

            def metric(self) -> AnswerMetric:
                return fn

        _Answer.name = name
        _Answer.__name__ = _Answer.__qualname__ = f"AnswerScorer_{name}"
        registry.register("scorer", name, _Answer, label=name, description=description, order=order,
                          family="answer", **meta)
        return fn

    return wrap


answer_scorer("exact_match", "normalised prediction equals a reference", order=0, default=True)(exact_match)
answer_scorer("f1", "SQuAD token F1, best over references", order=1, default=True)(f1)
answer_scorer("subspan_em", "a normalised reference occurs in the normalised prediction", order=2)(subspan_em)
answer_scorer("ruler_all", "RULER string_match_all: share of references found", order=3)(ruler_all)
answer_scorer("ruler_part", "RULER string_match_part: any reference found", order=4)(ruler_part)
answer_scorer("rouge_l", "ROUGE-L F-measure (rouge-score), best over references", order=5)(rouge_l)
answer_scorer("best_subspan_em", "Lost in the Middle best_subspan_em (same as subspan_em)", order=6)(subspan_em)


QuestionMetric = Callable[[str, Sequence[str], Question], float]


def question_scorer(name: str, description: str, *, order: int = 100,
                    **meta: Any) -> Callable[[QuestionMetric], QuestionMetric]:
    """Register a metric that also reads the question (``fn(prediction, references, question)``), such
    as a benchmark's per-dataset metric, as scorer ``name``."""

    def wrap(fn: QuestionMetric) -> QuestionMetric:
        class _WithQuestion(Scorer):
            kind = "answer"

            def score(self, case: CaseResult, question: Question) -> float | None:
                return fn(case.answer, question.answers, question) if question.answers else None

            def metric(self) -> AnswerMetric:
                return fn  # type: ignore[return-value]  # the question is optional

        _WithQuestion.name = name
        _WithQuestion.__name__ = _WithQuestion.__qualname__ = f"QuestionScorer_{name}"
        registry.register("scorer", name, _WithQuestion, label=name, description=description, order=order,
                          family="answer", **meta)
        return fn

    return wrap


@registry.scorer(order=30, description="share of gold evidence covered by the retrieved chunks",
                 needs_retrieval=True, family="retrieval", auto_for_retrieval=True)
class RetrievalRecall(Scorer):
    name = "retrieval_recall"
    kind = "retrieval"

    def score(self, case: CaseResult, question: Question) -> float | None:
        return retrieval_recall(case, question)


class RankingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=RANK_K, ge=1, description="documents of the ranking looked at (name:k sets it)")


class _Ranking(Scorer):
    kind = "retrieval"
    Params: ClassVar[type[BaseModel]] = RankingParams
    _metric: ClassVar[Callable[..., float]]

    def score(self, case: CaseResult, question: Question) -> float | None:
        if case.metadata.get("retrieval") is not True or not question.evidence:
            return None
        gold = [ev.doc_id for ev in question.evidence]
        return type(self)._metric(retrieved_doc_ranking(case), gold, self.params.k)  # type: ignore[attr-defined]


@registry.scorer(order=31, arg="k", needs_retrieval=True, family="retrieval",
                 description="share of gold documents among the top k retrieved documents")
class RecallAtK(_Ranking):
    name = "recall_at_k"
    _metric = staticmethod(recall_at_k)


class MrrParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(default=None, ge=1, description="look at the top k only (default: the whole ranking)")


@registry.scorer(order=32, arg="k", needs_retrieval=True, family="retrieval",
                 description="reciprocal rank of the first gold document retrieved")
class Mrr(_Ranking):
    name = "mrr"
    Params = MrrParams
    _metric = staticmethod(mrr)


@registry.scorer(order=33, arg="k", needs_retrieval=True, family="retrieval",
                 description="nDCG@k of the retrieved documents, binary relevance")
class Ndcg(_Ranking):
    name = "ndcg"
    _metric = staticmethod(ndcg_at_k)


def get_scorer(name: str) -> Scorer:
    """The scorer ``name`` (``recall_at_k:10`` sets ``k``); a ``UserInputError`` listing the valid names
    otherwise."""
    comp = registry.get("scorer", name, field_name="scorer")
    built: Scorer = comp.target(registry.params_of("scorer", name, field_prefix="scorer"), name=name)
    return built


def needs_model(name: str) -> bool:
    """Whether scorer ``name`` is graded by a model (it needs a judge endpoint)."""
    return registry.get("scorer", name, field_name="scorer").needs_model


def is_judge_scorer(name: str) -> bool:
    """Whether ``name`` is a registered scorer graded by a model (``llm_judge[:rubric]`` among them)."""
    try:
        return needs_model(name)
    except UserInputError:
        return False


class _ScorerView(Mapping[str, Scorer]):
    """The registered scorers that score without a model, by name, in display order (read-only)."""

    def _names(self) -> list[str]:
        return [c.name for c in registry.components("scorer") if not c.needs_model]

    def __getitem__(self, name: str) -> Scorer:
        if name not in self._names():
            raise KeyError(name)
        return get_scorer(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


SCORERS: Mapping[str, Scorer] = _ScorerView()


_SQUAD_NORMALISED = ("exact_match", "f1", "subspan_em")


def reference_problem(name: str, question: Question) -> str | None:
    """Why ``question``'s references cannot be scored by scorer ``name`` (None when they can): a
    reference that normalises to nothing under the metric (``"A"`` under SQuAD normalisation, which
    removes the article), or, for ``choice``, references that name no option."""
    if not question.answers:
        return None
    if name in _SQUAD_NORMALISED:
        empty = [r for r in question.answers if not normalize_answer(r)]
        norm = "SQuAD normalisation (lowercase, no punctuation, no a/an/the)"
    elif name == "rouge_l":
        empty = [r for r in question.answers if not rouge_tokenize(r)]
        norm = "ROUGE tokenisation (ASCII letters and digits)"
    elif name in ("ruler_all", "ruler_part"):
        empty = [r for r in question.answers if not r]
        norm = "RULER matching"
    elif name == "choice":
        if gold_letters(question.answers, question_choices(question)):
            return None
        return (f"question '{question.id}': no reference names an option ({question.answers!r}); give the "
                "option letter, or the text of one of the question's 'choices'")
    else:
        return None
    if not empty:
        return None
    return (f"question '{question.id}': the reference {empty[0]!r} normalises to an empty string under "
            f"{norm}, so '{name}' cannot score it (every reply would match or none would); for a "
            "multiple-choice question use the 'choice' scorer")


def check_references(questions: Sequence[Question], scorer_names: Sequence[str], *,
                     source: str | None = None) -> None:
    """Refuse scorers that cannot score a question's references (``reference_problem``), naming the
    first such question."""
    names = [n for n in scorer_names if n in SCORERS and SCORERS[n].kind == "answer"]
    for q in questions:
        for name in names:
            problem = reference_problem(name, q)
            if problem is not None:
                raise UserInputError(problem, source=source, field="scorers")


def score_case(case: CaseResult, question: Question, scorer_names: Sequence[str]) -> dict[str, float | None]:
    """Every named scorer's score for ``case`` (None where a scorer does not apply; answer scorers give
    0 to a case without an answer, ``score_of``). Scorers graded by a model are left out: the engine
    grades them with its judge endpoint after these."""
    scorers = [get_scorer(n) for n in scorer_names]
    return {s.name: score_of(s, case, question) for s in scorers if not s.needs_model}


def score_of(scorer: Scorer, case: CaseResult, question: Question) -> float | None:
    """``scorer``'s score for ``case``, except that a case without an answer (``case.answered`` is
    False: over_window, error, no_answer, cancelled) scores 0 on every answer scorer by definition
    (None for a question without references), never the score of an empty string."""
    if not case.answered and scorer.kind == "answer":
        return 0.0 if question.answers else None
    return scorer.score(case, question)


question_scorer("choice", "multiple choice: the option letter chosen (LongBench v2 extraction) is the reference's",
                order=7)(_choice_for)

for _i, (_name, _desc) in enumerate(_LONGBENCH_DESCRIPTIONS.items()):
    question_scorer(_name, _desc + ", best over references", order=10 + _i)(_longbench_metric(_name))
question_scorer("longbench", "LongBench: the dataset's own metric (eval.py dataset2metric)", order=19)(longbench)
question_scorer("infinitebench", "InfiniteBench: the task's own metric (compute_scores.py)", order=20)(infinitebench)
