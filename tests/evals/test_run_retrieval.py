"""One run compares long_context, rag with bm25/dense/hybrid, self_route and agentic on the same
questions, scored by exact metrics and by a judge: in process, and through ``ctxeval run`` against the
fake server on 127.0.0.1."""

from __future__ import annotations

import json
import textwrap

import pytest
from rich.console import Console

from app.cli.run import run_file
from app.cli.runfile import load_run_file, resolve_embeddings, resolve_judge
from evals.diagnostics import error_attribution, judge_agreement
from evals.domain import Outcome, StrategySpec
from evals.errors import UserInputError
from evals.suites.io import dump_suite
from evals.summary import CaseRow, summarize
from tests.fakes.mock_transport import MockModel
from tests.fakes.openai_server import FakeConfig, run_in_thread
from tests.retrieval_suite import endpoint, make_suite, run_cases

# 32-token chunks, about two sentences: the fake model's hashed bag of words finds each needle wherever
# it falls in a chunk (at 48 it found the lisbon needle only where it started one; see
# test_retrieval.test_dense_retrieval_finds_the_relevant_chunk)
SMALL = {"chunk_tokens": 32, "overlap_tokens": 0, "k": 2}
STRATEGIES = [
    StrategySpec(name="long_context"),
    StrategySpec(name="rag", params=SMALL, label="rag_bm25"),
    StrategySpec(name="rag", params={**SMALL, "retriever": "dense"}, label="rag_dense"),
    StrategySpec(name="rag", params={**SMALL, "retriever": "hybrid"}, label="rag_hybrid"),
    StrategySpec(name="self_route", params=SMALL, label="self_route"),
    StrategySpec(name="agentic", params=SMALL, label="agentic"),
]


async def test_one_run_compares_every_strategy_with_exact_metrics_and_a_judge():
    suite, model = make_suite(), MockModel()
    judge = endpoint(name="judge", model="judge-model")
    results = await run_cases(suite, endpoint(embedding_model="emb", supports_tools=True), STRATEGIES, model,
                              scorers=("exact_match", "f1", "llm_judge", "recall_at_k", "mrr", "ndcg"), judge=judge)
    assert len(results) == 2 * len(STRATEGIES)
    for r in results.values():
        assert r.outcome == Outcome.ok and r.scores["exact_match"] == 1.0 and r.scores["llm_judge"] == 1.0, r.strategy
        if r.strategy != "long_context":
            assert r.scores["mrr"] == 1.0 and r.metadata["attribution"] == "correct"
    rows = [CaseRow.from_result(r) for r in results.values()]
    summary = summarize(rows, primary="exact_match", n_boot=200)
    assert {g.strategy for g in summary.groups} == {s.key for s in STRATEGIES}
    assert {a.versus: a.n for a in judge_agreement(rows)} == {"exact_match": 12, "f1>=0.5": 12}
    assert {a.strategy for a in error_attribution(rows)} == {s.key for s in STRATEGIES} - {"long_context"}


def write_run(tmp_path, url: str, judge: str = "judge") -> None:
    dump_suite(make_suite(), tmp_path / "suite.jsonl")
    (tmp_path / "run.yaml").write_text(textwrap.dedent(f"""\
        suite: suite.jsonl
        endpoints:
          - {{name: fake, base_url: "{url}", model: fake-model, supports_tools: true, max_output_tokens: 32}}
        strategies:
          - name: long_context
          - {{name: rag, label: rag_bm25, params: {json.dumps(SMALL)}}}
          - {{name: rag, label: rag_dense, params: {json.dumps({**SMALL, "retriever": "dense"})}}}
          - {{name: rag, label: rag_hybrid, params: {json.dumps({**SMALL, "retriever": "hybrid"})}}}
          - {{name: self_route, label: self_route, params: {json.dumps(SMALL)}}}
          - {{name: agentic, label: agentic, params: {json.dumps(SMALL)}}}
        scorers: [exact_match, f1, mrr, llm_judge]
        cache: false
        embeddings: {{source: endpoint, model: fake-embed, batch_size: 16, cache_dir: "{tmp_path / 'emb'}"}}
        judge: {judge}
          """), encoding="utf-8")


async def test_ctxeval_run_wires_embeddings_and_the_judge(tmp_path):
    with run_in_thread(FakeConfig(tool_mode=True)) as server:
        write_run(tmp_path, server.base_url,
                  judge=f'{{name: judge, base_url: "{server.base_url}", model: judge-model}}')
        out = tmp_path / "results.jsonl"
        summary = await run_file(tmp_path / "run.yaml", out, resume=False, console=Console(width=200, quiet=True))
        stats = server.stats()
    cases = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(cases) == 12 and {g.strategy for g in summary.groups} == {s.key for s in STRATEGIES}
    by = {(c["question_id"], c["strategy"]): c for c in cases}
    for key in ("rag_bm25", "rag_dense", "rag_hybrid", "agentic"):
        assert by[("q1", key)]["answer"] == "4418203", key
        assert by[("q1", key)]["retrieved"][0]["doc_id"] == "d2", key
    assert by[("q1", "rag_dense")]["metadata"]["embedder"].endswith(":fake-embed")
    assert [s["tool"] for s in by[("q1", "agentic")]["steps"]] == ["search", "answer"]
    assert list((tmp_path / "emb").glob("*.npy"))  # the corpus embeddings were stored
    assert "/v1/embeddings" in json.dumps(stats)
    # the fake server judges with the shared fake model, as the in-process run above does
    for c in cases:
        assert c["outcome"] == "ok" and c["scores"]["llm_judge"] == 1.0, (c["question_id"], c["strategy"])
    judged = by[("q1", "long_context")]
    assert judged["metadata"]["judge"]["llm_judge"]["model"] == "judge-model"
    assert judged["metadata"]["judge"]["llm_judge"]["raw"].endswith('"rationale": "matches"}')
    assert judged["scores"]["exact_match"] == 1.0


def test_run_file_judge_by_name_and_embedding_endpoint_key(tmp_path, monkeypatch):
    write_run(tmp_path, "http://127.0.0.1:9")
    run, _ = load_run_file(tmp_path / "run.yaml")
    with pytest.raises(UserInputError, match="no endpoint named 'judge'"):
        resolve_judge(run, [])
    text = (tmp_path / "run.yaml").read_text().replace("judge: judge", "judge: fake").replace(
        "embeddings: {source: endpoint,", 'embeddings: {endpoint: {name: emb, base_url: "http://127.0.0.1:8", '
        "model: bge, api_key_env: EMB_KEY}, source: endpoint,")
    (tmp_path / "run.yaml").write_text(text)
    run, _ = load_run_file(tmp_path / "run.yaml")
    with pytest.raises(UserInputError, match="EMB_KEY is not set"):
        resolve_embeddings(run)
    monkeypatch.setenv("EMB_KEY", "sk-emb")
    settings = resolve_embeddings(run)
    assert settings.endpoint.api_key.get_secret_value() == "sk-emb" and settings.batch_size == 16
    from app.cli.runfile import resolve_endpoints

    assert resolve_judge(run, resolve_endpoints(run)).name == "fake"
