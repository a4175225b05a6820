"""A team's own retriever and RAG app over HTTP, beside long_context and rag in one run.

The pipeline is a real FastAPI app on 127.0.0.1 with its own bm25s index (``tests/fakes/pipeline_app``);
the model is the fake OpenAI-compatible server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from evals.domain import CaseResult, Endpoint, Outcome, StrategySpec
from evals.errors import UserInputError
from evals.retrieval.base import IndexCache
from evals.runner import Engine, make_spec, plan_cases, required_secrets, run_all
from evals.strategies.http import contract_schemas
from evals.suites.io import dump_suite
from evals.suites.registry import generate
from evals.summary import CaseRow, compare
from evals.tokens import local_tokenizer
from tests.fakes.pipeline_app import PipelineState, serve_pipeline

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-pipeline-token"


@pytest.fixture(scope="module")
def suite():
    return generate("multihop", {"seed": 5, "target_tokens": 4000, "samples": 6}, local_tokenizer("cl100k"))


def endpoint(fake_server) -> Endpoint:
    return Endpoint(name="fake", base_url=fake_server.url, model="fake-model", concurrency=4, max_retries=0)


async def run(suite, ep, strategies, **kw) -> list[CaseResult]:
    spec = make_spec(suite, [ep], strategies, ["exact_match", "f1"])
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec, index_cache=IndexCache(), **kw) as engine:
        return [r async for r in run_all(engine, plan_cases(spec, suite))]


def test_own_retriever_and_own_app_run_beside_long_context_and_rag(tmp_path, fake_server, suite):
    with serve_pipeline(PipelineState(token=TOKEN)) as pipe:
        dump_suite(suite, tmp_path / "suite.jsonl")
        common = {"url": pipe.url, "token_env": "PIPELINE_TOKEN", "push_index": True}
        spec = {
            "suite": "suite.jsonl",
            "endpoints": [{"name": "fake", "base_url": fake_server.url, "model": "fake-model", "concurrency": 4,
                           "price_input": 0.5, "price_output": 1.5}],
            "strategies": [{"name": "long_context"}, {"name": "rag", "params": {"k": 3}},
                           {"name": "http_retriever", "params": {**common, "k": 3}},
                           {"name": "http_app", "params": {**common, "send_documents": False}}],
            "scorers": ["exact_match", "f1", "mrr"],
            "cache": False,
        }
        (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        out = tmp_path / "results.jsonl"
        res = CliRunner(env={"COLUMNS": "200", "PIPELINE_TOKEN": TOKEN}).invoke(
            cli, ["run", str(tmp_path / "run.yaml"), "--out", str(out), "--summary-json", str(tmp_path / "s.json")])
        assert res.exit_code == 0, res.output
        assert TOKEN not in res.output
        results = [CaseResult.model_validate_json(line) for line in out.read_text().splitlines()]
        by = {}
        for r in results:
            by.setdefault(r.strategy_name, []).append(r)
        assert set(by) == {"long_context", "rag", "http_retriever", "http_app"}
        assert all(r.outcome != Outcome.error for r in results), [r.error_message for r in results]
        # the suite was pushed once per pipeline strategy, before its first question
        assert pipe.paths().count("/index") == 2 and pipe.state.indexed_suite == suite.content_hash
        assert pipe.paths().count("/retrieve") == len(suite.questions)
        assert pipe.paths().count("/answer") == len(suite.questions)
        # http_retriever: the pipeline's chunks, with its doc ids and spans, in ctxeval's prompt to the model
        for r in by["http_retriever"]:
            assert r.retrieved and all(c.end > c.start for c in r.retrieved)
            doc = next(d for d in suite.documents if d.id == r.retrieved[0].doc_id)
            assert doc.text[r.retrieved[0].start:r.retrieved[0].end].strip() == r.retrieved[0].text.strip()
            assert r.retrieved[0].text in r.prompt[-1]["content"]
            assert r.scores["retrieval_recall"] is not None and r.scores["mrr"] is not None
            assert r.usage.prompt_tokens  # the model endpoint was called
        assert any(r.scores["retrieval_recall"] for r in by["http_retriever"])
        # http_app: its answer scored, its contexts scored as retrieval, its latency, usage and cost kept
        for r in by["http_app"]:
            assert r.answer and r.latency_s is not None and r.latency_s > 0
            assert r.cost_usd == pytest.approx(0.0004) and r.usage.completion_tokens == 12
            assert r.scores["retrieval_recall"] is not None and [c.role for c in r.calls] == ["app"]
        body = next(b for p, b in pipe.state.requests if p == "/answer")
        assert body["documents"] is None and body["document_ids"] and body["suite"]["hash"] == suite.content_hash
        # one report: every strategy in the summary, paired comparisons against long_context
        summary = json.loads((tmp_path / "s.json").read_text())
        assert {g["strategy"] for g in summary["groups"]} == {r.strategy for r in results}
        rows = [CaseRow.from_result(r) for r in results]
        for other in ("http_retriever", "http_app"):
            key = next(r.strategy for r in results if r.strategy_name == other)
            paired = compare(rows, "long_context", key, scorer="f1")
            assert paired.n == len(suite.questions)


async def test_retries_then_succeeds_and_failures_keep_their_outcome_class(fake_server, suite):
    ep = endpoint(fake_server)
    with serve_pipeline(PipelineState(fail_next=2, fail_status=503)) as pipe:
        ok = await run(suite, ep, [StrategySpec(name="http_app", params={"url": pipe.url, "max_retries": 2})])
        assert all(r.outcome != Outcome.error for r in ok)
        assert pipe.paths().count("/answer") == len(suite.questions) + 2  # two 503s retried
        assert sum(c.attempts - 1 for r in ok for c in r.calls) == 2

        pipe.state.fail_next, pipe.state.fail_status = 10_000, 503
        failed = await run(suite, ep, [StrategySpec(name="http_app", params={"url": pipe.url, "max_retries": 1})])
        assert {r.error_class for r in failed} == {"server_error"}

        pipe.state.fail_next, pipe.state.fail_status = 10_000, 422
        refused = await run(suite, ep, [StrategySpec(name="http_retriever", params={"url": pipe.url})])
        assert {r.error_class for r in refused} == {"bad_request"}

        pipe.state.fail_next, pipe.state.malformed = 0, True
        bad = await run(suite, ep, [StrategySpec(name="http_retriever", params={"url": pipe.url})])
        assert {r.error_class for r in bad} == {"bad_response"}
        assert "chunks.0.text" in bad[0].error_message


async def test_a_wrong_token_is_refused_and_never_shown(fake_server, suite):
    ep = endpoint(fake_server)
    with serve_pipeline(PipelineState(token=TOKEN)) as pipe:
        params = {"url": pipe.url, "token_env": "T"}
        spec = make_spec(suite, [ep], [StrategySpec(name="http_app", params=params)], ["f1"])
        assert required_secrets(spec) == ["T"]
        with pytest.raises(UserInputError, match="token"):
            Engine(suite=suite, endpoints={ep.name: ep}, spec=spec)
        results = await run(suite, ep, [StrategySpec(name="http_app", params=params)], secrets={"T": "wrong"})
        assert {r.error_class for r in results} == {"bad_request"}
        assert all("wrong" not in (r.error_message or "") for r in results)
        ok = await run(suite, ep, [StrategySpec(name="http_app", params=params)], secrets={"T": TOKEN})
        assert all(r.outcome != Outcome.error for r in ok)
        assert TOKEN not in spec.model_dump_json()  # only the secret's name is stored with the run


async def test_an_unreachable_pipeline_is_a_connection_error(fake_server, suite):
    from tests.fakes.runner import _bind

    sock = _bind()  # a port nobody listens on
    port = sock.getsockname()[1]
    sock.close()
    results = await run(suite, endpoint(fake_server), [StrategySpec(
        name="http_app", params={"url": f"http://127.0.0.1:{port}", "max_retries": 0, "timeout_s": 5})])
    assert {r.error_class for r in results} == {"connection_error"}


def test_the_contract_schemas_are_published():
    for name, schema in contract_schemas().items():
        path = ROOT / "evals" / "schemas" / f"{name}.schema.json"
        assert json.loads(path.read_text(encoding="utf-8")) == schema, f"{path} is out of date"
