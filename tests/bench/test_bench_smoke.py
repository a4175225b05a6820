"""The benchmark harness (``bench/``) at its tiny sizes: every benchmark runs and returns rows that carry
a ctxeval figure, a reference and a ratio, or say why they could not run. Nothing here asserts a time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import engine, report
from bench.common import Figure, Row, Sizes, alternate, fast_fake
from bench.data import short_suite

TINY = Sizes.tiny()


def quiet(_: str) -> None:
    pass


def assert_measured(row: Row) -> None:
    assert row.skipped is None, row.skipped
    assert row.what and row.conditions
    for fig in (row.ctxeval, row.reference):
        assert fig is not None and fig.label and fig.unit
        assert fig.samples and fig.value is not None and fig.value > 0
    assert row.ratio is not None and row.ratio > 0
    json.dumps(row.as_dict(), default=str)


def test_alternation_and_orientation_of_the_ratio() -> None:
    calls: list[tuple[str, int]] = []
    got = alternate({"a": lambda r: calls.append(("a", r)) or 1.0, "b": lambda r: calls.append(("b", r)) or 2.0},
                    2, log=quiet)
    assert calls == [("a", -1), ("b", -1), ("a", 0), ("b", 0), ("b", 1), ("a", 1)]
    assert got == {"a": [1.0, 1.0], "b": [2.0, 2.0]}
    faster = Row("x", "throughput", "c", Figure("ctxeval", "1/s", [50.0]), Figure("limit", "1/s", [100.0]))
    slower = Row("x", "time", "c", Figure("ctxeval", "s", [2.0], higher_is_better=False),
                 Figure("peer", "s", [8.0], higher_is_better=False))
    assert faster.ratio == 0.5 and slower.ratio == 4.0


def test_the_fast_fake_server_streams_and_answers_plainly() -> None:
    with fast_fake() as fake:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                "stream_options": {"include_usage": True}}
        seconds, answers = asyncio.run(engine.run_bare([body] * 3, fake.base_url, 2))
        plain = httpx.post(f"{fake.base_url}/v1/chat/completions", json={**body, "stream": False}).json()
        assert answers == ["42"] * 3 and plain["choices"][0]["message"]["content"] == "42"
        assert fake.stats()["chat"] == 4


def test_the_limit_sends_exactly_what_ctxeval_sends() -> None:
    suite = short_suite(3)
    ep = engine.endpoint("http://127.0.0.1:9", 2)
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": "42"}, "finish_reason": "stop"}]})

    from evals.domain import StrategySpec
    from evals.runner import Engine, make_spec, plan_cases, run_all

    async def through_ctxeval() -> None:
        spec = make_spec(suite, [ep], [StrategySpec(name="long_context")])
        async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec,
                          transport=httpx.MockTransport(handler)) as eng:
            async for _ in run_all(eng, plan_cases(spec, suite)):
                pass

    asyncio.run(through_ctxeval())
    bare = asyncio.run(engine.request_bodies(ep, engine.long_context_messages(suite)))
    key = lambda b: json.dumps(b, sort_keys=True)  # noqa: E731
    assert sorted(map(key, seen)) == sorted(map(key, bare))


def test_engine_rows() -> None:
    rows = engine.run(TINY, quiet)
    assert [r.extra["latency_ms"] for r in rows] == [TINY.latency_ms, 0.0]
    for row in rows:
        assert_measured(row)
        assert row.extra["raw_socket_per_s"] > 0 and not row.extra["errors"]


def test_retrieval_rows() -> None:
    from bench import retrieval

    rows = retrieval.run(TINY, quiet)
    assert len(rows) == 4
    for row in rows:
        assert_measured(row)


def test_durable_rows_on_sqlite_and_a_missing_postgres_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import dbs, durable

    monkeypatch.setattr(dbs, "pg_unavailable", lambda: "PostgreSQL not reachable at nowhere: test")
    rows = durable.run(TINY, quiet)
    assert [r.what for r in rows] == ["Durable execution throughput (SQLite)",
                                      "Durable execution throughput (PostgreSQL)"]
    assert_measured(rows[0])
    assert rows[1].skipped == "skipped: PostgreSQL not reachable at nowhere: test"


def test_scale_rows_on_sqlite() -> None:
    from bench import scale

    rows = scale.run(TINY, quiet, kinds=("sqlite",))
    assert [r.what for r in rows] == ["Run summary API at scale (SQLite)", "Run report page at scale (SQLite)"]
    for row in rows:
        assert_measured(row)


def test_memory_row() -> None:
    from bench import memory

    rows = memory.run(TINY, quiet)
    assert [r.ctxeval.unit if r.ctxeval else None for r in rows] == ["MiB", "s", "s"]
    for row in rows:
        assert_measured(row)


def test_peer_without_its_environment_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real Inspect AI run needs bench/.venv-peer (made by ``make bench``); here it is never made."""
    from bench import peer

    monkeypatch.setattr(peer, "PEER_VENV", tmp_path / "no-venv")
    [row] = peer.run(TINY, quiet, install=False)
    assert row.skipped is not None and row.skipped.startswith("skipped: inspect-ai is not installed")


@pytest.mark.slow
def test_prefix_row_on_the_bundled_model() -> None:
    from bench import prefix

    reason = prefix.local_unavailable()
    if reason is not None:
        pytest.skip(reason)
    [row] = prefix.run(TINY, quiet)
    assert_measured(row)
    assert "cached" in (row.ctxeval.detail if row.ctxeval else "")


def test_prefix_without_the_local_extra_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import prefix

    monkeypatch.setattr(prefix, "local_unavailable", lambda: "the 'local' extra is not installed (test)")
    [row] = prefix.run(TINY, quiet)
    assert row.skipped == "skipped: the 'local' extra is not installed (test)"


def test_the_shuffled_twin_keeps_documents_and_questions() -> None:
    from bench import prefix

    aware, shuffled = prefix.suites(300, 4, 0)
    assert [q.question for q in aware.questions] == [q.question for q in shuffled.questions]
    orders = [q.doc_ids for q in shuffled.questions]
    assert all(sorted(o or []) == sorted(aware.questions[0].doc_ids or []) for o in orders)
    assert all(o != aware.questions[0].doc_ids for o in orders)


def test_markdown_and_json_writers(tmp_path: Path) -> None:
    rows = [Row("engine", "Engine throughput", "N=40", Figure("ctxeval", "cases/s", [50.0, 60.0, 55.0]),
                Figure("bare | httpx", "req/s", [100.0])),
            Row("durable", "Durable (PostgreSQL)", "N=4", skipped="skipped: PostgreSQL not reachable")]
    machine = {"cores": 2, "usable_cores": 2, "memory_gib": 23.0, "cpu": "cpu", "python": "3.11",
               "platform": "linux", "load_avg": [0.1], "commit": "abc"}
    out, js = tmp_path / "b.md", tmp_path / "b.json"
    report.write(rows, out, js, machine=machine, mode="tiny", sizes={"reps": 1}, started=datetime.now(UTC),
                 wall_s=3.0, timings={})
    text = out.read_text()
    assert "| What | ctxeval | Reference | Ratio | Conditions |" in text
    assert "| Engine throughput | 55.0 cases/s<br>ctxeval | 100 req/s<br>bare \\| httpx | **0.55** | N=40 |" in text
    assert "| Durable (PostgreSQL) | skipped: PostgreSQL not reachable | | – | N=4 |" in text
    assert "2 cores" in text
    data = json.loads(js.read_text())
    assert data["rows"][0]["ratio"] == 0.55 and data["rows"][0]["ctxeval"]["samples"] == [50.0, 60.0, 55.0]
    assert data["machine"]["cores"] == 2


def test_the_command_line_writes_both_files(tmp_path: Path) -> None:
    from bench import run

    out = tmp_path / "bench.md"
    assert run.main(["--tiny", "--only", "retrieval", "--out", str(out)]) == 0
    assert "Retrieval index build" in out.read_text()
    assert json.loads(out.with_suffix(".json").read_text())["only"] == ["retrieval"]


def test_workers_row() -> None:
    """Worker processes on PostgreSQL (skipped with the reason where PostgreSQL is not reachable)."""
    from bench import workers

    [row] = workers.run(TINY, quiet, n_workers=2)
    if row.skipped is not None:
        assert row.skipped.startswith("skipped: ")
        return
    assert_measured(row)
    [one] = row.extra["runs"]
    assert one["statements_per_case"] > 0 and one["cpu_ms_per_case"] > 0
    assert len(one["per_worker"]) == 2
