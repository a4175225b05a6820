"""Presets: the request a server receives is the benchmark's own prompt, filled as the original fills it.

The expected strings are built from the originals' files in ``tests/data/originals/`` (copied from
NVIDIA/RULER, THUDM/LongBench, nelson-liu/lost-in-the-middle, gkamradt/LLMTest_NeedleInAHaystack and
OpenBMB/InfiniteBench), with the originals' own filling steps, never from ``evals.presets``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from evals.domain import Endpoint, Outcome, StrategySpec, Suite
from evals.runner import Engine, make_spec, plan_cases, run_all
from evals.suites.importers import import_longbench
from evals.suites.lim_kv import generate_lim_kv
from evals.suites.niah import generate_niah
from evals.suites.ruler_cwe import generate_ruler_cwe
from evals.suites.ruler_fwe import generate_ruler_fwe
from evals.suites.ruler_niah import generate_ruler_niah_multivalue, generate_ruler_niah_single
from evals.suites.ruler_vt import generate_ruler_vt
from evals.tokens import local_tokenizer
from tests.fakes.openai_server import FakeServer

ORIGINALS = Path(__file__).parent.parent / "data" / "originals"
TOK = local_tokenizer("cl100k")


def original(name: str) -> str:
    return (ORIGINALS / name).read_text(encoding="utf-8")


def ruler_tasks() -> dict[str, dict[str, Any]]:
    """RULER's TASKS from scripts/data/synthetic/constants.py (a literal dict)."""
    tree = ast.parse(original("RULER_scripts_data_synthetic_constants.py"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "TASKS")  # type: ignore[attr-defined]
    return ast.literal_eval(node.value)  # type: ignore[no-any-return]


def ruler_input(task: str, *, singular: bool = False, **values: Any) -> tuple[str, str]:
    """prepare.py: template = task template + answer prefix ('base' model template); niah.py's singular
    rewrite; format; then the answer prefix is cut off at rfind(answer_prefix[:10]) (as the generators'
    final_output does) and sent after the input (call_api.py: input + answer_prefix)."""
    t = ruler_tasks()[task]
    template = t["template"] + t["answer_prefix"]
    if singular:  # niah.py, num_needle_q * num_needle_v == 1
        template = template.replace("Some", "A").replace("are all", "is").replace("are", "is")
        template = template.replace("answers", "answer")
    text = template.format(**values)
    cut = text.rfind(t["answer_prefix"][:10])
    return text[:cut], text[cut:]


def endpoint(server: FakeServer, **kw: Any) -> Endpoint:
    return Endpoint(name="fake", base_url=server.base_url, model="fake-model", **kw)


async def run(suite: Suite, ep: Endpoint, strategies: list[StrategySpec] | None = None,
              scorers: list[str] | None = None, preset: str | None = None) -> list[Any]:
    spec = make_spec(suite, [ep], strategies or [StrategySpec(name="long_context")], scorers, preset=preset)
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec) as engine:
        return [r async for r in run_all(engine, plan_cases(spec, suite))]


def doc(suite: Suite, i: int = 0) -> str:
    return suite.context_documents(suite.questions[i])[0].text


# ------------------------------------------------------------------------------------------------ RULER
async def test_ruler_niah_single_is_rulers_prompt_with_the_answer_prefix_as_prefill(fake_server: FakeServer):
    suite = generate_ruler_niah_single({"lengths": [1000]}, TOK)
    q = suite.questions[0]
    results = await run(suite, endpoint(fake_server, prefill="assistant"))
    body = fake_server.bodies()[-1]
    expected, prefix = ruler_input("niah", singular=True, type_needle_v="number", context=doc(suite),
                                   query=q.metadata["keys"][0])
    assert body["messages"] == [{"role": "user", "content": expected}, {"role": "assistant", "content": prefix}]
    assert body["max_tokens"] == 128  # tokens_to_generate
    assert prefix == f" The special magic number for {q.metadata['keys'][0]} mentioned in the provided text is"
    assert results[0].metadata["answer_prefix_mode"] == "assistant"
    assert results[0].metadata["preset"] == "ruler"


async def test_ruler_multivalue_keeps_the_plural_wording(fake_server: FakeServer):
    suite = generate_ruler_niah_multivalue({"lengths": [1500]}, TOK)
    q = suite.questions[0]
    await run(suite, endpoint(fake_server, prefill="continue_final_message"))
    body = fake_server.bodies()[-1]
    expected, prefix = ruler_input("niah", type_needle_v="numbers", context=doc(suite), query=q.metadata["keys"][0])
    assert body["messages"] == [{"role": "user", "content": expected}, {"role": "assistant", "content": prefix}]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


async def test_ruler_vt_has_one_worked_example_before_the_task(fake_server: FakeServer):
    suite = generate_ruler_vt({"lengths": [2000]}, TOK)
    q = suite.questions[0]
    await run(suite, endpoint(fake_server, prefill="user"))
    body = fake_server.bodies()[-1]
    expected, prefix = ruler_input("variable_tracking", context=doc(suite), query=q.metadata["value"], num_v=5)
    example = q.metadata["template_vars"]["icl_example"]
    # answer prefix appended to the user turn on servers without prefill
    assert body["messages"] == [{"role": "user", "content": example + expected + prefix}]
    assert body["max_tokens"] == 30
    # the example: RULER's template and answer prefix filled for a 500-token task, its five names, "\n\n"
    t = ruler_tasks()["variable_tracking"]
    head = t["template"].split("{context}")[0]
    assert example.startswith(head)
    shown = re.search(r"assigned the value (\d{5}) in the text above\.", example)
    assert shown is not None
    filled_prefix = t["answer_prefix"].format(num_v=5, query=shown.group(1))
    assert re.search(re.escape(filled_prefix) + r" [A-Z]{5} [A-Z]{5} [A-Z]{5} [A-Z]{5} [A-Z]{5}\n\n$", example)
    assert 400 <= TOK.count(example) <= 560


async def test_ruler_cwe_example_and_fwe_template(fake_server: FakeServer):
    suite = generate_ruler_cwe({"lengths": [2000]}, TOK)
    await run(suite, endpoint(fake_server, prefill="deepseek"))
    body = fake_server.bodies()[-1]
    expected, prefix = ruler_input("common_words_extraction", context=doc(suite), num_cw=10, query="")
    example = suite.questions[0].metadata["template_vars"]["icl_example"]
    assert body["messages"] == [{"role": "user", "content": example + expected},
                                {"role": "assistant", "content": prefix, "prefix": True}]
    assert body["max_tokens"] == 120
    t = ruler_tasks()["common_words_extraction"]
    assert example.startswith(t["template"].split("{context}")[0])
    assert re.search(re.escape(t["answer_prefix"]) + r" 1\. \S+( \d+\. \S+){9}\n$", example)

    fwe = generate_ruler_fwe({"lengths": [2000]}, TOK)
    await run(fwe, endpoint(fake_server, prefill="assistant"))
    body = fake_server.bodies()[-1]
    expected, prefix = ruler_input("freq_words_extraction", context=doc(fwe), query="")
    assert body["messages"] == [{"role": "user", "content": expected}, {"role": "assistant", "content": prefix}]
    assert body["max_tokens"] == 50


async def test_ruler_base_model_through_the_completions_route(fake_server: FakeServer):
    suite = generate_ruler_niah_single({"lengths": [1000]}, TOK)
    q = suite.questions[0]
    results = await run(suite, endpoint(fake_server, api="completions"))
    body = fake_server.bodies()[-1]
    expected, prefix = ruler_input("niah", singular=True, type_needle_v="number", context=doc(suite),
                                   query=q.metadata["keys"][0])
    assert body["prompt"] == expected + prefix and "messages" not in body
    assert results[0].metadata["answer_prefix_mode"] == "completions"
    assert results[0].outcome != Outcome.error and results[0].answer  # the streamed text came back


async def test_ruler_suite_sized_to_8192_fits_an_8192_window(fake_server: FakeServer):
    fake_server.configure(max_model_len=8192)
    suite = generate_ruler_niah_single({"lengths": [8192]}, TOK)
    results = await run(suite, endpoint(fake_server, context_window=8192, tokenizer="cl100k"))
    assert results[0].outcome not in (Outcome.over_window, Outcome.error), results[0].error_message
    body = fake_server.bodies()[-1]
    sent = sum(TOK.count(m["content"]) for m in body["messages"])
    assert sent + body["max_tokens"] <= 8192
    assert sent + body["max_tokens"] >= 0.98 * 8192 - 100  # sized to the window, not far below it


async def test_a_long_context_case_that_cannot_fit_is_refused_before_any_request(fake_server: FakeServer):
    suite = generate_ruler_niah_single({"lengths": [8192]}, TOK)
    results = await run(suite, endpoint(fake_server, context_window=4096, tokenizer="cl100k"))
    assert results[0].outcome == Outcome.over_window and results[0].error_class == "over_budget"
    assert "not sent" in (results[0].error_message or "")
    assert fake_server.bodies() == []


async def test_ruler_qa_template_for_an_imported_qa_suite(fake_server: FakeServer):
    from evals.domain import Document, Question

    docs = [Document(id="a", title="Ada Lovelace", text="Ada wrote the first program."),
            Document(id="b", title="", text="Paris is in France.")]
    suite = Suite(name="qa", documents=docs, questions=[Question(id="q", question="Who wrote the first program?",
                                                                 answers=["Ada"])])
    results = await run(suite, endpoint(fake_server, prefill="assistant"), preset="ruler")
    body = fake_server.bodies()[-1]
    # qa.py: DOCUMENT_PROMPT = "Document {i}:\n{document}", documents joined by blank lines; a HotpotQA
    # document is its title, a newline and its text
    context = "\n\n".join(["Document 1:\nAda Lovelace\nAda wrote the first program.",
                            "Document 2:\nParis is in France."])
    expected, prefix = ruler_input("qa", context=context, query="Who wrote the first program?")
    assert body["messages"] == [{"role": "user", "content": expected}, {"role": "assistant", "content": prefix}]
    assert body["max_tokens"] == 32 and "ruler_part" in results[0].scores


# ------------------------------------------------------------------------------------- Kamradt and LitM
def _kamradt_strings() -> tuple[str, str]:
    src = original("Kamradt_providers_openai.py")
    system = re.search(r'"role": "system",\s*"content": "([^"]+)"', src)
    question = re.search(r'f"\{retrieval_question\}([^"]+)"', src)
    assert system and question
    return system.group(1), question.group(1)


async def test_kamradt_prompt_is_system_context_question(fake_server: FakeServer):
    suite = generate_niah({"lengths": [1500], "depths": [50]}, TOK)
    await run(suite, endpoint(fake_server))
    body = fake_server.bodies()[-1]
    system, tail = _kamradt_strings()
    assert body["messages"] == [
        {"role": "system", "content": system},
        {"role": "user", "content": doc(suite)},
        {"role": "user", "content": "What is the best thing to do in San Francisco?" + tail}]
    assert body["max_tokens"] == 300 and body["temperature"] == 0


def test_kamradt_scores_with_its_judge_when_a_judge_is_given() -> None:
    suite = generate_niah({"lengths": [1500], "depths": [50]}, TOK)
    ep = Endpoint(name="e", base_url="http://127.0.0.1:9", model="m")
    judge = Endpoint(name="j", base_url="http://127.0.0.1:9", model="judge")
    assert make_spec(suite, [ep], [StrategySpec(name="long_context")]).scorers == ["subspan_em"]
    assert make_spec(suite, [ep], [StrategySpec(name="long_context")], judge=judge).scorers == \
        ["llm_judge:kamradt", "subspan_em"]


# LangChain 0.1.x ``SCORING_TEMPLATE_WITH_REFERENCE`` (langchain/evaluation/scoring/prompt.py), the judge
# Kamradt's evaluator loads with ``load_evaluator("labeled_score_string", criteria=CRITERIA)``
LANGCHAIN_LABELED = (
    '[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI '
    'assistant to the user question displayed below. {criteria}[Ground truth]\n{reference}\nBegin your '
    'evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, '
    'you must rate the response on a scale of 1 to 10 by strictly following this format: "[[rating]]", for '
    'example: "Rating: [[5]]".\n\n[Question]\n{input}\n\n[The Start of Assistant\'s Answer]\n{prediction}\n'
    "[The End of Assistant's Answer]")


def test_kamradt_judge_is_his_evaluator_prompt() -> None:
    from evals.domain import CaseResult
    from evals.judge import judge_messages, parse_verdict

    tree = ast.parse(original("Kamradt_evaluators_openai.py"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    node = next(n for n in cls.body if isinstance(n, ast.Assign) and n.targets[0].id == "CRITERIA")  # type: ignore[attr-defined]
    criteria = ast.literal_eval(node.value)
    # LabeledScoreStringEvalChain.from_llm: CRITERIA_INSTRUCTIONS + "\n".join(f"{k}: {v}")
    criteria_str = "For this evaluation, you should primarily consider the following criteria:\n" + \
        "\n".join(f"{k}: {v}" for k, v in criteria.items())
    suite = generate_niah({"lengths": [1500], "depths": [50]}, TOK)
    q = suite.questions[0]
    case = CaseResult(case_id="c", question_id=q.id, endpoint="e", strategy="s", strategy_name="s",
                      answer="Eat a sandwich in Dolores Park.")
    messages = judge_messages("kamradt", q, case)
    needle = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
    assert messages == [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": LANGCHAIN_LABELED.format(
                            criteria=criteria_str, reference=needle,
                            input="What is the best thing to do in San Francisco?", prediction=case.answer)}]
    verdict = parse_verdict("The answer omits the sunny day.\nRating: [[7]]", "kamradt")
    assert verdict.raw_score == 7 and verdict.score == pytest.approx(6 / 9)


async def test_litm_kv_prompt(fake_server: FakeServer):
    suite = generate_lim_kv({"lengths": [4000], "depths": [50]}, TOK)
    q = suite.questions[0]
    await run(suite, endpoint(fake_server))
    body = fake_server.bodies()[-1]
    template = original("LitM_prompts_kv_retrieval.prompt").rstrip("\n")  # prompting.py reads it so
    expected = template.format(formatted_kv_records=doc(suite), key=q.metadata["gold_key"])
    assert body["messages"] == [{"role": "user", "content": expected}]
    assert body["max_tokens"] == 100


# ---------------------------------------------------------------------------------------------- LongBench
def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("dataset", ["narrativeqa", "hotpotqa", "multifieldqa_zh", "gov_report", "trec", "samsum",
                                     "passage_retrieval_en", "passage_count", "lcc", "repobench-p"])
async def test_longbench_prompt_is_dataset2prompt(fake_server: FakeServer, tmp_path: Path, dataset: str):
    rec = {"_id": "x1", "input": "What {is} it?" if dataset != "gov_report" else "",
           "context": "Paragraph 1: Ada {wrote} it.\nimport os\n", "answers": ["Paragraph 1"],
           "length": 9, "dataset": dataset, "language": "en", "all_classes": ["A", "B"]}
    suite = import_longbench(_jsonl(tmp_path / f"{dataset}.jsonl", [rec]))
    await run(suite, endpoint(fake_server))
    body = fake_server.bodies()[-1]
    prompt = json.loads(original("LongBench_config_dataset2prompt.json"))[dataset]
    expected = prompt.format(**rec)  # pred.py: prompt_format.format(**json_obj)
    maxlen = {"narrativeqa": 128, "hotpotqa": 32, "multifieldqa_zh": 64, "gov_report": 512, "trec": 64,
              "samsum": 128, "passage_retrieval_en": 32, "passage_count": 32, "lcc": 64, "repobench-p": 64}
    assert body["messages"] == [{"role": "user", "content": expected}]
    assert body["max_tokens"] == maxlen[dataset]  # dataset2maxlen.json
    assert body.get("stop") == (["\n"] if dataset == "samsum" else None)


async def test_longbench_v2_prompt_with_and_without_cot(fake_server: FakeServer, tmp_path: Path):
    rec = {"_id": "v", "domain": "d", "sub_domain": "s", "difficulty": "easy", "length": "short",
           "question": " Which one? ", "choice_A": "one ", "choice_B": "two", "choice_C": "three",
           "choice_D": "four", "answer": "B", "context": "  The long text.\n"}
    suite = import_longbench(_jsonl(tmp_path / "v2.jsonl", [rec]))

    def fill(template: str) -> str:  # pred.py's replacements
        return (template.replace("$DOC$", rec["context"].strip()).replace("$Q$", rec["question"].strip())
                .replace("$C_A$", rec["choice_A"].strip()).replace("$C_B$", rec["choice_B"].strip())
                .replace("$C_C$", rec["choice_C"].strip()).replace("$C_D$", rec["choice_D"].strip()))

    await run(suite, endpoint(fake_server), scorers=["exact_match"])
    body = fake_server.bodies()[-1]
    assert body["messages"] == [{"role": "user", "content": fill(original("LongBench_v2_prompts_0shot.txt"))}]
    assert body["max_tokens"] == 128 and body["temperature"] == 0.1
    results = await run(suite, endpoint(fake_server), scorers=["exact_match"], preset="longbench_v2_cot")
    first, second = fake_server.bodies()[-2:]
    assert first["messages"] == [{"role": "user", "content": fill(original("LongBench_v2_prompts_0shot_cot.txt"))}]
    assert first["max_tokens"] == 1024
    cot = results[0].metadata["cot"]  # pred.py: output.strip() goes into $COT$ of the answer prompt
    assert second["messages"] == [{"role": "user", "content": fill(
        original("LongBench_v2_prompts_0shot_cot_ans.txt")).replace("$COT$", cot)}]
    assert second["max_tokens"] == 128 and second["temperature"] == 0.1
    await run(suite, endpoint(fake_server), [StrategySpec(name="no_context")], scorers=["exact_match"])
    body = fake_server.bodies()[-1]
    assert body["messages"] == [{"role": "user",
                                 "content": fill(original("LongBench_v2_prompts_0shot_no_context.txt"))}]


# ------------------------------------------------------------------------------------------ InfiniteBench
def _ib_templates() -> dict[str, str]:
    tree = ast.parse(original("InfiniteBench_src_prompt.py"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "gpt4_templates")  # type: ignore[attr-defined]
    return ast.literal_eval(node.value)  # type: ignore[no-any-return]


async def test_infinitebench_prompts(fake_server: FakeServer, tmp_path: Path):
    templates = _ib_templates()
    cases = {
        "kv_retrieval": ({"id": 0, "context": '{"a": "b"}', "input": 'Key: "a"\nThe value associated with the '
                          'specified key is: ', "answer": "b", "options": []},
                         lambda e: templates["kv_retrieval"].format(context=e["context"], input=e["input"]), 50),
        "longbook_choice_eng": ({"id": 1, "context": "Book.", "input": "Who?", "answer": ["y"],
                                 "options": ["x", "y", "z", "w"]},
                                lambda e: templates["longbook_choice_eng"].format(
                                    question=e["input"], context=e["context"], OPTION_A="x", OPTION_B="y",
                                    OPTION_C="z", OPTION_D="w"), 40),
    }
    for task, (rec, fill, max_new) in cases.items():
        suite = import_longbench(_jsonl(tmp_path / f"{task}.jsonl", [rec]))
        results = await run(suite, endpoint(fake_server))
        body = fake_server.bodies()[-1]
        assert body["messages"] == [{"role": "system", "content": "You are a helpful assistant"},
                                    {"role": "user", "content": fill(rec)}]
        assert body["max_tokens"] == max_new
        assert "infinitebench" in results[0].scores


async def test_longbench_first_line_rule_applies_to_every_scorer_of_trec(tmp_path: Path):
    from tests.evals.test_runner import run_cases
    from tests.fakes.mock_transport import MockModel

    rec = {"_id": "t1", "input": "What is the capital?", "context": "Examples.", "answers": ["Location"],
           "length": 3, "dataset": "trec", "language": "en", "all_classes": ["Location", "Human being"]}
    suite = import_longbench(_jsonl(tmp_path / "trec.jsonl", [rec]))
    mock = MockModel(answer=lambda messages: "Location\nHuman being")
    ep = Endpoint(name="mock", base_url="http://127.0.0.1:9/v1", model="m")
    results = await run_cases(suite, ep, [StrategySpec(name="long_context")], mock,
                              scorers=("longbench", "longbench_classification", "exact_match"))
    case = results[("t1", "long_context")]
    assert case.answer == "Location\nHuman being"  # stored as the model wrote it
    assert case.scores == {"longbench": 1.0, "longbench_classification": 1.0, "exact_match": 1.0}
