"""Run labels (rename, tags, notes), headline scores, delete, and runs compared against a baseline."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import select

from app.db import make_engine, session_scope
from app.models import CaseRecord, RunRecord
from evals.stats import holm, mcnemar_exact, paired_difference
from tests.app.helpers import case_result, store, stored_run

BASE = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
OTHER = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]


def _runs(settings, *, other_questions: int = 6):
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        a = stored_run(s, n_questions=6, strategies=("rag",), scorers=("exact_match",))
        store(s, a, [case_result(f"q{i}", "rag", scores={"exact_match": BASE[i]}, cost_usd=0.002, latency_s=1.0)
                     for i in range(6)])
        b = stored_run(s, n_questions=6, strategies=("rag",), scorers=("exact_match",))
        store(s, b, [case_result(f"q{i}", "rag", scores={"exact_match": OTHER[i]}, cost_usd=0.001, latency_s=0.5)
                     for i in range(other_questions)])
        ids = (a.id, b.id)
    engine.dispose()
    return ids


def test_rename_tag_annotate_and_filter_by_tag(client, settings):
    a, b = _runs(settings)
    r = client.patch(f"/api/runs/{a}", json={"name": "k=5 baseline", "tags": ["baseline", "qwen", "qwen"],
                                             "notes": "before the chunker change"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "k=5 baseline" and r.json()["tags"] == ["baseline", "qwen"]
    assert r.json()["notes"] == "before the chunker change"
    r = client.patch(f"/api/runs/{a}", json={"notes": None})
    assert r.json()["notes"] is None and r.json()["tags"] == ["baseline", "qwen"]
    listed = client.get("/api/runs", params={"tag": "baseline"}).json()
    assert [x["id"] for x in listed["data"]] == [a] and listed["count"] == 1
    assert client.get("/api/runs", params={"tag": "base"}).json()["count"] == 0
    for bad in ({"tags": ["a,b"]}, {"tags": ['say "hi"']}, {"name": "x" * 201}, {"spec": {}}):
        r = client.patch(f"/api/runs/{a}", json=bad)
        assert r.status_code == 422, bad
    assert client.patch("/api/runs/999", json={"name": "x"}).status_code == 404


def test_headline_scores_per_endpoint_and_strategy(client, settings):
    a, _ = _runs(settings, other_questions=3)
    run = client.get(f"/api/runs/{a}").json()
    assert run["headline"] == [{"endpoint": "fake", "strategy": "rag", "scorer": "exact_match",
                                "mean": pytest.approx(np.mean(BASE)), "n": 6}]


def test_delete_takes_the_cases_with_it(client, settings):
    a, b = _runs(settings)
    assert client.delete(f"/api/runs/{a}").status_code == 204
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        assert s.exec(select(CaseRecord).where(CaseRecord.run_id == a)).all() == []
        assert s.get(RunRecord, a) is None
        assert len(s.exec(select(CaseRecord).where(CaseRecord.run_id == b)).all()) == 6
    engine.dispose()


def test_compare_two_runs_paired_on_shared_questions(client, settings):
    a, b = _runs(settings)
    r = client.get("/api/compare", params={"runs": [b, a], "baseline": a})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["baseline"]["id"] == a and out["scorer"] == "exact_match"
    (item,) = out["runs"]
    assert item["run"]["id"] == b and item["same_suite"]
    (pair,) = item["comparison"]["pairs"]
    expected = paired_difference(BASE, OTHER)
    assert pair["n_paired"] == 6 and pair["paired"]["mean"] == pytest.approx(np.mean(OTHER) - np.mean(BASE))
    assert pair["paired"]["low"] == pytest.approx(expected.low) and pair["paired"]["high"] == pytest.approx(expected.high)
    assert (pair["wins"], pair["losses"], pair["ties"]) == (2, 1, 3)
    assert pair["mcnemar_p"] == pytest.approx(mcnemar_exact(1, 2)) == pytest.approx(pair["p_value"])
    assert pair["paired"]["method"] == "newcombe" and pair["p_holm"] == pytest.approx(pair["p_value"])
    assert pair["unpaired"] is None
    assert [q["question_id"] for q in pair["fixed"]] == ["q1", "q3"]
    assert [q["question_id"] for q in pair["broken"]] == ["q4"]
    assert pair["cost_per_case_delta"] == pytest.approx(-0.001)
    assert pair["latency_p50_delta_s"] == pytest.approx(-0.5)


def test_compare_where_questions_differ_adds_the_unpaired_difference(client, settings):
    a, b = _runs(settings, other_questions=4)
    (item,) = client.get("/api/compare", params={"runs": [a, b]}).json()["runs"]
    pair = item["comparison"]["pairs"][0]
    assert pair["n_paired"] == 4
    assert pair["unpaired"]["mean"] == pytest.approx(np.mean(OTHER[:4]) - np.mean(BASE))


def test_compare_refuses_what_it_cannot_compare(client, settings):
    a, b = _runs(settings)
    r = client.get("/api/compare", params={"runs": [a]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "runs"
    r = client.get("/api/compare", params={"runs": [a, b], "scorer": "f1"})
    assert r.status_code == 422 and "not scored with 'f1'" in r.json()["error"]["message"]
    assert client.get("/api/compare", params={"runs": [a, 999]}).status_code == 404


def test_summary_export_as_csv_and_markdown(client, settings):
    import csv
    import io

    a, _ = _runs(settings)
    summary = client.get(f"/api/runs/{a}/summary").json()
    r = client.get(f"/api/runs/{a}/summary/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    (row,) = rows
    est = summary["groups"][0]["scores"]["exact_match"]
    assert (row["endpoint"], row["strategy"], row["n"]) == ("fake", "rag", "6")
    assert float(row["exact_match_mean"]) == pytest.approx(est["mean"])
    assert float(row["exact_match_ci_low"]) == pytest.approx(est["low"])
    assert float(row["cost_usd_per_case"]) == pytest.approx(0.002)
    md = client.get(f"/api/runs/{a}/summary/export", params={"format": "markdown"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    lines = md.text.splitlines()
    assert lines[0] == f"## Run {a}" and "| endpoint | strategy | n | exact_match |" in md.text
    assert f"| fake | rag | 6 | {est['mean']:.3f} [{est['low']:.3f}, {est['high']:.3f}] |" in md.text
    from evals.summary import RunSummary, verdict_markdown

    verdict = verdict_markdown(RunSummary.model_validate(summary)).strip()
    assert verdict and md.text.rstrip().endswith(verdict)  # the verdict follows the table
    assert client.get(f"/api/runs/{a}/summary/export", params={"format": "xls"}).status_code == 422


def test_a_finished_comparison_is_kept_until_a_run_changes(client, settings):
    a, b = _runs(settings)
    first = client.get("/api/compare", params={"runs": [a, b]}).json()
    assert client.get("/api/compare", params={"runs": [a, b]}).json() == first
    client.patch(f"/api/runs/{b}", json={"name": "renamed"})
    assert client.get("/api/compare", params={"runs": [a, b]}).json()["runs"][0]["run"]["name"] == "renamed"


def test_holm_adjusts_over_every_run_compared(client, settings):
    a, b = _runs(settings)
    _, c = _runs(settings, other_questions=5)
    out = client.get("/api/compare", params={"runs": [a, b, c]}).json()
    pairs = [p for item in out["runs"] for p in item["comparison"]["pairs"]]
    assert len(pairs) == 2
    expected = holm([p["p_value"] for p in pairs])
    assert [p["p_holm"] for p in pairs] == pytest.approx(list(expected))
