"""CI checks: parsing, validation against a run, evaluation, JUnit XML and Markdown."""

import xml.etree.ElementTree as ET

import pytest

from evals.checks import (
    all_passed,
    evaluate_checks,
    parse_check,
    parse_checks,
    render_junit,
    render_markdown,
    validate_checks,
)
from evals.errors import UserInputError
from evals.stats import mean_ci, paired_bootstrap
from evals.summary import CaseRow, summarize


def row(q, strategy, f1, *, endpoint="e1", em=None):
    return CaseRow(case_id=f"{endpoint}-{q}-{strategy}", question_id=q, endpoint=endpoint, strategy=strategy,
                   strategy_name=strategy.split("[")[0], scores={"f1": f1, "exact_match": em})


RAG = [1.0, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 0.75]
LC = [1.0, 0.5, 0.5, 1.0, 0.0, 0.0, 1.0, 0.5]


def rows(rag=RAG, lc=LC, endpoint="e1", rag_key="rag"):
    out = [row(f"q{i}", rag_key, v, endpoint=endpoint) for i, v in enumerate(rag)]
    out += [row(f"q{i}", "long_context", v, endpoint=endpoint) for i, v in enumerate(lc)]
    return out


def evaluate(texts, data, baseline=None):
    summary = summarize(data, primary="f1", n_boot=500)
    return evaluate_checks(parse_checks(texts), data, summary, baseline=baseline, n_boot=500)


# ------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text, expected", [
    ("rag:subspan_em>=0.7", dict(endpoint=None, strategy="rag", versus=None, scorer="subspan_em", stat="mean",
                                 op=">=", threshold=0.7)),
    (" rag : f1.lower >= 0.6 ", dict(strategy="rag", scorer="f1", stat="lower", op=">=", threshold=0.6)),
    ("rag:f1.upper<0.9", dict(stat="upper", op="<", threshold=0.9)),
    ("rag-vs-long_context:subspan_em>=-0.02", dict(strategy="rag", versus="long_context", threshold=-0.02)),
    ("rag[chunk_tokens=256,k=5]:f1>.5", dict(strategy="rag[chunk_tokens=256,k=5]", threshold=0.5, op=">")),
    ("rag-vs-baseline:f1.lower>=-0.05", dict(versus="baseline", stat="lower", threshold=-0.05)),
    ("local-vllm/rag:f1<=1e-1", dict(endpoint="local-vllm", strategy="rag", op="<=", threshold=0.1)),
])
def test_parse(text, expected):
    c = parse_check(text)
    for k, v in expected.items():
        assert getattr(c, k) == v, k


def test_canonical_text_and_kind():
    assert parse_check(" rag : f1.mean >= 0.70 ").text == "rag:f1>=0.70"
    assert parse_check("a-vs-b:f1.lower>0").text == "a-vs-b:f1.lower>0"
    assert [parse_check(t).kind for t in ("a:f1>0", "a-vs-b:f1>0", "a-vs-baseline:f1>0")] == [
        "absolute", "difference", "baseline"]


@pytest.mark.parametrize("text, why", [
    ("", "empty check"),
    ("rag:f1", "no comparison"),
    ("rag:f1>=high", "no comparison"),
    ("rag:f1=>0.5", "'f1=' is not a scorer name"),
    ("rag>=0.5", "missing ':SCORER'"),
    (":f1>=0.5", "missing ':SCORER'"),
    ("/rag:f1>=0.5", "empty endpoint"),
    ("rag-vs-:f1>=0.5", "nothing after '-vs-'"),
    ("rag:.lower>=0.5", "empty scorer"),
])
def test_parse_errors_name_the_check_and_syntax(text, why):
    with pytest.raises(UserInputError) as e:
        parse_check(text, source="run.yaml", field="checks[0]")
    msg = str(e.value)
    assert why in msg and "expected [ENDPOINT/]STRATEGY" in msg and msg.startswith("run.yaml, field 'checks[0]'")


def test_validate_names_what_is_unknown():
    def v(text, baseline=False):
        validate_checks(parse_checks([text]), strategies=["rag", "long_context"], scorers=["f1"],
                        endpoints=["e1"], has_baseline=baseline)

    v("rag:f1>=0.5")
    v("rag-vs-baseline:f1>=0", baseline=True)
    for text, fragment in [("rug:f1>=0.5", "no strategy 'rug' in this run; strategies: rag, long_context"),
                           ("rag-vs-lc:f1>=0", "no strategy 'lc'"),
                           ("rag:em>=0.5", "no scorer 'em' in this run; scorers: f1"),
                           ("e9/rag:f1>=0.5", "no endpoint 'e9'"),
                           ("rag-vs-rag:f1>=0", "compared with itself"),
                           ("rag-vs-baseline:f1>=0", "no baseline was given")]:
        with pytest.raises(UserInputError, match=fragment.replace("[", r"\[")):
            v(text)


# ---------------------------------------------------------------------------------------- evaluation
def test_absolute_mean_and_interval_bounds_come_from_the_summary():
    data = rows()
    est = mean_ci(RAG, n_boot=500)
    mean_pass, mean_fail, lower, upper = evaluate(
        ["rag:f1>=0.78", "rag:f1>0.8", f"rag:f1.lower>={est.low - 1e-9}", f"rag:f1.upper<{est.high}"], data)
    assert mean_pass.status == "passed" and mean_pass.observed == pytest.approx(sum(RAG) / 8) and mean_pass.n == 8
    assert mean_fail.status == "failed" and "not >" in mean_fail.message and "n = 8" in mean_fail.message
    assert lower.status == "passed" and lower.observed == pytest.approx(est.low)
    assert upper.status == "failed" and upper.observed == pytest.approx(est.high)
    assert (lower.low, lower.high) == pytest.approx((est.low, est.high))


def test_difference_is_paired_a_minus_b():
    data = rows()
    d = paired_bootstrap(LC, RAG, n_boot=500)
    r = evaluate(["rag-vs-long_context:f1>=0.1", "long_context-vs-rag:f1.upper<0"], data)
    assert r[0].observed == pytest.approx(d.mean) == pytest.approx((sum(RAG) - sum(LC)) / 8)
    assert r[0].status == "passed" and r[0].kind == "difference" and r[0].n == 8
    assert r[1].observed == pytest.approx(-d.low) and r[1].status == "passed"


def test_difference_uses_only_questions_both_scored():
    data = rows()
    data[0] = data[0].model_copy(update={"scores": {"f1": None}})  # rag failed on q0
    r = evaluate(["rag-vs-long_context:f1>=-1"], data)[0]
    assert r.n == 7 and r.observed == pytest.approx((sum(RAG[1:]) - sum(LC[1:])) / 7)


def test_baseline_regression_check_pairs_shared_questions():
    base = rows(rag=[1.0] * 8)  # the baseline's rag was perfect
    r = evaluate(["rag-vs-baseline:f1>=-0.02", "rag-vs-baseline:f1>=-0.5"], rows(), baseline=base)
    assert r[0].status == "failed" and r[0].observed == pytest.approx(sum(RAG) / 8 - 1.0) and r[0].n == 8
    assert "baseline" in r[0].message and r[0].kind == "baseline"
    assert r[1].status == "passed"
    # only the questions both runs have count
    r = evaluate(["rag-vs-baseline:f1>=0"], rows(), baseline=[x for x in base if x.question_id in ("q0", "q1")])[0]
    assert r.n == 2 and r.observed == pytest.approx(0.0) and r.status == "passed"


def test_baseline_from_another_endpoint_name_is_paired_when_it_has_one():
    base = rows(rag=[0.0] * 8, endpoint="old-server")
    r = evaluate(["rag-vs-baseline:f1>0"], rows(), baseline=base)[0]
    assert r.status == "passed" and r.n == 8 and r.observed == pytest.approx(sum(RAG) / 8)


def test_baseline_without_the_strategy_is_an_error():
    base = rows(rag_key="rag[k=3]")
    r = evaluate(["rag-vs-baseline:f1>=0"], rows(), baseline=base)[0]
    assert r.status == "error" and "baseline has no case of strategy 'rag'" in r.message


def test_every_endpoint_must_pass_unless_one_is_named():
    data = rows() + rows(rag=[0.0] * 8, endpoint="e2")
    r = evaluate(["rag:f1>=0.5", "e1/rag:f1>=0.5"], data)
    assert [(x.endpoint, x.status) for x in r] == [("e1", "passed"), ("e2", "failed"), ("e1", "passed")]
    assert not all_passed(r)


def test_no_scored_case_is_an_error_not_a_pass():
    data = [x.model_copy(update={"scores": {"f1": None}}) if x.strategy == "rag" else x for x in rows()]
    r = evaluate(["rag:f1>=0", "rag-vs-long_context:f1>=-1"], data)
    assert [x.status for x in r] == ["error", "error"]
    assert "no case has this score" in r[0].message and "no question scored by both" in r[1].message
    assert not all_passed(r)


def test_strategy_missing_from_results_is_an_error():
    r = evaluate(["self_route:f1>=0"], rows())[0]
    assert r.status == "error" and "no case of strategy 'self_route'" in r.message


# ---------------------------------------------------------------------------------------- renderings
def test_junit_has_a_case_per_check_with_failures_and_errors():
    data = rows()
    results = evaluate(["rag:f1>=0.5", "rag:f1>=0.99", "self_route:f1>=0"], data)
    xml = render_junit(results, run_failure="run failed: 8 of 16 cases errored")
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["run status", "rag:f1>=0.5 [e1]", "rag:f1>=0.99 [e1]",
                                              "self_route:f1>=0"]
    assert cases[1].find("failure") is None and cases[2].find("failure") is not None
    assert "not ≥ 0.99" in cases[2].find("failure").get("message")
    assert cases[3].find("error") is not None


def test_junit_escapes_names():
    data = [row("q1", 'r<&">', 1.0)]
    summary = summarize(data, primary="f1", n_boot=10)
    results = evaluate_checks(parse_checks(['r<&">:f1>=0.5']), data, summary)
    root = ET.fromstring(render_junit(results))
    assert root.find("testsuite/testcase").get("name") == 'r<&">:f1>=0.5 [e1]'


def test_markdown_shows_verdict_checks_and_every_scorer():
    data = [r.model_copy(update={"scores": {"f1": r.scores["f1"], "exact_match": 1.0}}) for r in rows()]
    summary = summarize(data, primary="f1", n_boot=200)
    results = evaluate_checks(parse_checks(["rag:f1>=0.99", "rag:exact_match>=1"]), data, summary, n_boot=200)
    md = render_markdown(summary, results, title="nightly", status="completed")
    assert md.startswith("## nightly: FAILED")
    assert "### Checks: 1 of 2 passed" in md and "❌ | `rag:f1>=0.99`" in md and "✅ | `rag:exact_match>=1`" in md
    assert "f1 [95% CI] | exact_match [95% CI]" in md
    table = [line for line in md.splitlines() if line.startswith("| e1 | rag |")]
    assert table and "0.781 [" in table[0]
    assert summary.recommendation is not None and "### Recommendation" in md
    assert md.index("### Results per strategy") < md.index("### Recommendation")
    ok = render_markdown(summary, [results[1]], status="completed")
    assert ok.startswith("## ctxeval run: PASSED")
    assert render_markdown(summary, [results[1]], run_failure="all cases errored").startswith(
        "## ctxeval run: FAILED")


def test_markdown_escapes_table_cells():
    data = [row("q1", "a|b<script>", 1.0)]
    md = render_markdown(summarize(data, primary="f1", n_boot=10), [])
    assert "a\\|b&lt;script&gt;" in md and "<script>" not in md
