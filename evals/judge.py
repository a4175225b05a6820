"""The ``llm_judge`` scorer: a judge model grades each case with a rubric.

Rubrics (scorer names ``llm_judge`` = ``llm_judge:correctness``, ``llm_judge:niah``,
``llm_judge:faithfulness``):

- ``correctness``: 1 when the answer states what a reference answer states, else 0.
- ``niah``: Kamradt's 1–10 needle rubric against the reference, normalised as (s − 1) / 9.
- ``kamradt``: Kamradt's own judge prompt (LangChain's labeled_score_string with his criteria, the needle
  as the reference), its ``[[N]]`` verdict 1–10 kept as ``raw_score``, normalised as (s − 1) / 9.
- ``faithfulness``: 1 when every claim of the answer is supported by the case's retrieved chunks
  (not applicable, None, to a case that retrieved nothing).

Judges are asked for a JSON object, but nothing relies on structured output: the verdict is read
from a JSON object anywhere in the reply, else from a ``Score: N`` / ``Rating: [[N]]`` line, else
from a reply that is a single verdict word. The raw reply is kept; a reply that says nothing
parseable is a ``judge_error``. Judge calls are recorded with role ``judge`` and never count
towards the tested model's tokens or cost.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import httpx
from pydantic import BaseModel, ConfigDict, Field

from evals import registry
from evals.cache import ResponseCache
from evals.client import ModelClient
from evals.domain import CallRecord, CaseResult, Endpoint, Question
from evals.errors import UserInputError
from evals.scorers import Scorer
from evals.strategies.base import LLM

JUDGE_SCORER = "llm_judge"
Rubric = Literal["correctness", "niah", "faithfulness", "kamradt"]
RUBRICS: tuple[str, ...] = get_args(Rubric)
SYSTEM = ("You are an impartial judge grading answers to questions. Apply the rubric exactly. "
          "End your reply with one JSON object on its own line.")
MAX_CONTEXT_CHARS = 60_000

_CORRECTNESS = (
    "Rubric: the answer to grade is correct (score 1) when it states the same fact as one of the reference "
    "answers; wording, formatting and extra detail do not matter. A different value, a contradiction or a "
    "missing required part makes it incorrect (score 0). An answer saying the question cannot be answered is "
    "correct only when a reference answer says so.")
_NIAH = (
    "Rubric: score how well the answer to grade matches the reference answer on a scale of 1 to 10: "
    "1 = unrelated to the reference; 3 = minor relevance but not accurate; 5 = moderately relevant with "
    "errors; 7 = aligned with the reference with minor omissions; 10 = fully accurate and complete.")
# Kamradt's judge, as LLMTest_NeedleInAHaystack runs it (needlehaystack/evaluators/openai.py): LangChain
# 0.1.9's ``labeled_score_string`` evaluator (langchain/evaluation/scoring/prompt.py
# SCORING_TEMPLATE_WITH_REFERENCE and eval_chain.py LabeledScoreStringEvalChain: criteria as
# "For this evaluation, you should primarily consider the following criteria:\n" + "name: text"), with
# the evaluator's CRITERIA (indentation included), the needle sentence as the reference and the retrieval
# question as the input; the verdict is "[[N]]", 1 to 10.
KAMRADT_SYSTEM = "You are a helpful assistant."
KAMRADT_CRITERIA = ("\n                Score 1: The answer is completely unrelated to the reference.\n"
                    "                Score 3: The answer has minor relevance but does not align with the reference.\n"
                    "                Score 5: The answer has moderate relevance but contains inaccuracies.\n"
                    "                Score 7: The answer aligns with the reference but has minor omissions.\n"
                    "                Score 10: The answer is completely accurate and aligns perfectly with the "
                    "reference.\n                Only respond with a numberical score")
KAMRADT_TEMPLATE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. {criteria}[Ground truth]\n{reference}\nBegin your "
    "evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, "
    "you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for "
    "example: \"Rating: [[5]]\".\n\n[Question]\n{input}\n\n[The Start of Assistant's Answer]\n{prediction}\n"
    "[The End of Assistant's Answer]")


def kamradt_messages(question: Question, case: CaseResult) -> list[dict[str, Any]]:
    reference = question.metadata.get("needle") or (question.answers[0] if question.answers else "")
    asked = (question.metadata.get("template_vars") or {}).get("retrieval_question") or question.question
    criteria = "For this evaluation, you should primarily consider the following criteria:\n" + \
        f"accuracy: {KAMRADT_CRITERIA}"
    user = (KAMRADT_TEMPLATE.replace("{criteria}", criteria).replace("{reference}", str(reference))
            .replace("{input}", str(asked)).replace("{prediction}", case.answer))
    return [{"role": "system", "content": KAMRADT_SYSTEM}, {"role": "user", "content": user}]


_FAITHFULNESS = (
    "Rubric: the answer to grade is faithful (score 1) when every claim in it is supported by the context "
    "passages below, not by outside knowledge; otherwise it is unfaithful (score 0). An answer saying the "
    "question cannot be answered is faithful when the passages do not contain the answer.")


def rubric_of(name: str) -> str:
    """The rubric of a judge scorer name (``llm_judge`` → ``correctness``)."""
    base, _, rubric = name.partition(":")
    if base != JUDGE_SCORER:
        raise UserInputError(f"'{name}' is not a judge scorer", field="scorers")
    rubric = rubric or "correctness"
    if rubric not in RUBRICS:
        raise UserInputError(f"unknown judge rubric '{rubric}' in '{name}'; rubrics: {', '.join(RUBRICS)}",
                             field="scorers")
    return rubric


class JudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric: Rubric = Field(default="correctness", description="correctness | niah | faithfulness | kamradt "
                                                              "(llm_judge:niah sets it)")


def judge_messages(rubric: str, question: Question, case: CaseResult) -> list[dict[str, Any]] | None:
    """The judge prompt, or None when the rubric does not apply (faithfulness without retrieval)."""
    refs = "\n".join(f"- {a}" for a in question.answers) or "- (none given)"
    tail = f"Question: {question.question}\n"
    if rubric == "kamradt":
        return kamradt_messages(question, case)
    if rubric == "faithfulness":
        if not case.retrieved:
            return None
        context = "\n\n".join(f"[{c.chunk_id}]\n{c.text}" for c in sorted(case.retrieved, key=lambda c: c.rank))
        body = (f"{_FAITHFULNESS}\n\nContext:\n{context[:MAX_CONTEXT_CHARS]}\n\n{tail}"
                f"Answer to grade: {case.answer}\n\n"
                'Reply with your reasoning in one sentence, then {"score": 1 or 0, "rationale": "..."}')
    elif rubric == "niah":
        body = (f"{_NIAH}\n\n{tail}Reference answers:\n{refs}\nAnswer to grade: {case.answer}\n\n"
                'Reply with your reasoning in one sentence, then {"score": <1-10>, "rationale": "..."}')
    else:
        body = (f"{_CORRECTNESS}\n\n{tail}Reference answers:\n{refs}\nAnswer to grade: {case.answer}\n\n"
                'Reply with your reasoning in one sentence, then {"score": 1 or 0, "rationale": "..."}')
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


# ------------------------------------------------------------------------------------------ parsing
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_SCORE_KEYS = ("score", "rating", "grade", "verdict", "correct", "faithful", "supported", "label")
_REASON_KEYS = ("rationale", "reason", "reasoning", "explanation", "justification")
_SCORE_LINE = re.compile(r"(?im)^[\W_]*(?:final\s+)?(?:score|rating|grade|verdict)[\W_]*?[:=]\s*(.+)$")
_BRACKETS = re.compile(r"\[\[\s*([0-9]+(?:\.[0-9]+)?)\s*\]\]")
_WORDS = {"correct": 1.0, "yes": 1.0, "true": 1.0, "supported": 1.0, "faithful": 1.0, "pass": 1.0,
          "incorrect": 0.0, "no": 0.0, "false": 0.0, "unsupported": 0.0, "unfaithful": 0.0, "fail": 0.0,
          "wrong": 0.0, "not correct": 0.0, "not supported": 0.0, "not faithful": 0.0}
_NUMBER = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(?:\s*/\s*(?:10|1))?\b")


@dataclass
class Verdict:
    rubric: str
    score: float | None  # normalised to 0..1; None = not applicable or not parseable
    raw_score: float | None = None
    rationale: str = ""
    raw: str = ""
    error: str | None = None  # why no score could be read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(v: Any, rubric: str) -> float | None:
    """A verdict value as a raw score on the rubric's scale, or None."""
    if isinstance(v, bool):
        x: float | None = float(v)
    elif isinstance(v, int | float):
        x = float(v)
    elif isinstance(v, str):
        s = v.strip().strip("*`'\".").strip().lower()
        m = _NUMBER.match(s)
        first = re.split(r"[^a-z]+", s)[0] if s else ""
        x = float(m.group(1)) if m else _WORDS.get(s, _WORDS.get(first))
        if x is not None and not m and rubric in ("niah", "kamradt"):
            return None  # a verdict word is no 1-10 score
    else:
        return None
    if x is None:
        return None
    if rubric in ("niah", "kamradt"):
        return x if 1.0 <= x <= 10.0 else None
    return x if x in (0.0, 1.0) else None


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found = []
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    return found


def parse_verdict(text: str, rubric: str) -> Verdict:
    """Read a judge's reply; ``score`` is None and ``error`` says why when nothing parseable is there."""
    raw = text
    body = _THINK.sub("", text)
    if "</think>" in body.lower():  # an opening tag the server cut off
        body = body[body.lower().rindex("</think>") + len("</think>"):]
    body = body.strip()
    raw_score: float | None = None
    rationale = ""
    for obj in reversed(_json_objects(body)):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in _SCORE_KEYS:
            if key in lowered and (raw_score := _value(lowered[key], rubric)) is not None:
                rationale = next((str(lowered[k]) for k in _REASON_KEYS if k in lowered), "")
                break
        if raw_score is not None:
            break
    if raw_score is None:
        for m in reversed(list(_SCORE_LINE.finditer(body))):
            brackets = _BRACKETS.search(m.group(1))
            if (raw_score := _value(brackets.group(1) if brackets else m.group(1), rubric)) is not None:
                break
    if raw_score is None and (all_brackets := list(_BRACKETS.finditer(body))):
        raw_score = _value(all_brackets[-1].group(1), rubric)
    if raw_score is None and rubric not in ("niah", "kamradt") and len(body) <= 40:
        raw_score = _value(body, rubric)
    if raw_score is None:
        return Verdict(rubric=rubric, score=None, raw=raw, error="no score could be read from the judge's reply")
    if not rationale:
        rationale = body[:500]
    score = (raw_score - 1.0) / 9.0 if rubric in ("niah", "kamradt") else raw_score
    return Verdict(rubric=rubric, score=score, raw_score=raw_score, rationale=rationale[:500], raw=raw)


# ------------------------------------------------------------------------------------------- scorer
@registry.scorer(order=40, arg="rubric", needs_model=True, label="LLM judge", family="model")
class LlmJudge(Scorer):
    """A judge model grades each case with a rubric (correctness, niah or faithfulness)."""

    name = "llm_judge"
    kind = "model"
    Params = JudgeParams
    needs_model = True

    @property
    def rubric(self) -> str:
        return str(self.params.rubric)  # type: ignore[attr-defined]

    @property
    def grades_answer(self) -> bool:
        return self.rubric != "faithfulness"

    async def grade(self, case: CaseResult, question: Question, llm: LLM) -> Verdict:
        """The verdict on ``case``; calls go through ``llm`` (the judge endpoint's client, with the
        run's response cache) and are recorded there with role ``judge``.

        An empty answer scores 0 (correctness, niah) or None (faithfulness) without a call. Endpoint
        errors propagate (:class:`~evals.errors.EndpointError`).
        """
        rubric = self.rubric
        if not case.answer.strip():
            score = None if rubric == "faithfulness" else 0.0
            return Verdict(rubric=rubric, score=score, rationale="no answer to grade")
        messages = judge_messages(rubric, question, case)
        if messages is None:
            return Verdict(rubric=rubric, score=None, rationale="nothing retrieved to check against")
        resp = await llm.chat(messages, role="judge")
        return parse_verdict(resp.text or resp.reasoning, rubric)


# -------------------------------------------------------------------------------------------- judge
class Judge:
    """The judge endpoint of a run: the model client every model-graded scorer receives."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.AsyncBaseTransport | None = None,
                 cache: ResponseCache | None = None) -> None:
        self.endpoint = endpoint
        self.client = ModelClient(endpoint, transport=transport)
        self.cache = cache

    async def aclose(self) -> None:
        await self.client.aclose()

    async def grade(self, scorer: Scorer, question: Question, case: CaseResult) -> tuple[Verdict, list[CallRecord]]:
        """The verdict of the model-graded ``scorer`` on ``case`` and the judge calls it took."""
        llm = LLM(self.client, self.cache)
        verdict = await scorer.grade(case, question, llm)
        return verdict, llm.calls
