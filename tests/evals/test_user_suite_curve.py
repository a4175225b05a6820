"""A user's own documents and questions → a suite → swept over lengths and depths → a score-vs-length
curve per strategy, with the crossover where retrieval overtakes full context."""

from __future__ import annotations

from evals.domain import Endpoint, StrategySpec
from evals.runner import Engine, make_spec, plan_cases, run_all
from evals.suites.importers import import_questions
from evals.suites.sweep import sweep
from evals.summary import CaseRow, summarize
from evals.tokens import local_tokenizer
from tests.fakes.mock_transport import MockModel

FILLER = ("Quarterly reports are filed in the shared drive. The cafeteria opens at eight. Parking permits "
          "are renewed every spring. The library closes early on Fridays. ")


def make_user_files(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"memo{i:02d}.md").write_text(f"# Memo {i}\n\n" + FILLER * 12, encoding="utf-8")
    (docs / "facts.md").write_text("# Facts\n\nThe access code for the north vault is: 7719.\n", encoding="utf-8")
    (tmp_path / "questions.csv").write_text(
        "id,question,answers,evidence\n"
        'q1,What is the access code for the north vault?,7719,facts.md\n', encoding="utf-8")
    return docs, tmp_path / "questions.csv"


async def test_swept_user_suite_gives_a_curve_per_strategy_and_a_crossover(tmp_path):
    docs, questions = make_user_files(tmp_path)
    suite = import_questions(questions, docs, name="vault")
    tok = local_tokenizer("cl100k")
    # eleven depths per length: enough paired cases per length for the crossover test to be significant
    swept = sweep(suite, lengths=[1000, 2000, 4000, 8000], depths=list(range(0, 101, 10)), tokenizer=tok)
    assert len(swept.questions) == 44
    # a window of 3,000 tokens: long context fits the short variants only
    ep = Endpoint(name="m", base_url="http://127.0.0.1:9", model="m", context_window=3000, max_output_tokens=16)
    spec = make_spec(swept, [ep], [StrategySpec(name="long_context"), StrategySpec(name="rag", params={"k": 2}, label="rag")],
                     ["exact_match"])
    model = MockModel()
    async with Engine(suite=swept, endpoints={"m": ep}, spec=spec, transport=model.transport) as engine:
        rows = [CaseRow.from_result(r) async for r in run_all(engine, plan_cases(spec, swept))]
    summary = summarize(rows, primary="exact_match")
    curve = {}
    for cell in summary.by_length:
        curve.setdefault(cell.strategy, {})[cell.bucket.label] = cell.scores["exact_match"].mean
    assert set(curve) == {"long_context", "rag"}
    assert len(curve["long_context"]) >= 3 and len(curve["rag"]) >= 3
    assert all(v == 1.0 for v in curve["rag"].values())  # retrieval finds the code at every length
    lc = curve["long_context"]
    assert max(lc.values()) == 1.0 and min(lc.values()) == 0.0  # fits short, over the window long
    # the long variants were never sent: no answer, 0 by definition, counted unanswered by reason
    over = [r for r in rows if r.outcome == "over_window"]
    assert over and all(r.strategy == "long_context" and r.scores["exact_match"] == 0.0 for r in over)
    lc_group = next(g for g in summary.groups if g.strategy == "long_context")
    assert lc_group.unanswered == {"over_window": len(over)} and lc_group.answered == 44 - len(over)
    assert lc_group.scores_answered["exact_match"].mean == 1.0  # everything it was able to send, it got right
    crossover = next(c for c in summary.crossovers if c.strategy == "rag")
    assert crossover.length is not None and crossover.length > 1000
    assert crossover.bucket.label == "≤4K" and "overtakes" in crossover.verdict
    # with three cases per length the same curve is no evidence: nothing is declared from point means
    few = [r for r in rows if r.depth in (0.0, 50.0, 100.0)]
    assert next(c for c in summarize(few, primary="exact_match").crossovers if c.strategy == "rag").bucket is None
    depths = {cell.depth for cell in summary.grid if cell.strategy == "long_context"}
    assert depths == {float(d) for d in range(0, 101, 10)}  # the depths asked for; the measured ones are in the metadata
