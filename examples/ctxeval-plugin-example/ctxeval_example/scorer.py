"""``answer_in_context``: 1 when the normalised answer occurs in the case's prompt (is it grounded?)."""

from __future__ import annotations

from evals import registry
from evals.scorers import Scorer, normalize_answer


@registry.scorer(description="the normalised answer occurs in the prompt the model saw")
class AnswerInContext(Scorer):
    name = "answer_in_context"
    kind = "answer"

    @property
    def grades_answer(self) -> bool:
        return False  # grounding, not correctness

    def score(self, case, question):  # type: ignore[no-untyped-def]
        answer = normalize_answer(case.answer)
        if not answer:
            return None
        seen = normalize_answer(" ".join(str(m.get("content", "")) for m in case.prompt))
        return float(answer in seen)
