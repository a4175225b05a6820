"""6. Service at scale.

One finished run with many stored cases (inserted in bulk with SQLAlchemy Core, not through the API),
then finished the way the execution finishes a run (``run_views.warm``: its summary and report data
computed and stored; the time it takes is in the row's detail), served by the service in its own
process (uvicorn, no execution, auth off), on SQLite and on PostgreSQL. Measured over HTTP on
127.0.0.1: ``GET /api/runs/{id}/summary`` and the run report page ``GET /runs/{id}``, each with the
service's in-process copies emptied before the request (the first view of a finished run in a process);
the warm figures are in the table's detail and the JSON file. The reference is the floor both must pay: one ``SELECT`` of the same light columns of the run's
cases (what ``statistics.case_rows`` reads), fetched with SQLAlchemy Core in the benchmark's process.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from bench.common import Figure, Row, Sizes, alternate, process, skipped
from bench.dbs import databases
from evals.domain import Endpoint, RunSpec, StrategySpec, case_id_for
from evals.stats import percentile

NAME = "scale"
KINDS = ("sqlite", "postgres")
STRATEGIES = ("long_context", "rag")
BATCH = 5000


def insert_run(db: Any, n_cases: int, *, seed: int = 0) -> int:
    """A suite, one completed run and ``n_cases`` cases (light and detail rows); returns the run id."""
    from app.models import CaseDetailRecord, CaseRecord, RunRecord, SuiteRecord, utcnow

    rng = random.Random(seed)
    now = utcnow()
    n_questions = max(1, n_cases // len(STRATEGIES))
    ep = Endpoint(name="bench", base_url="http://127.0.0.1:9/v1", model="bench-model")
    spec = RunSpec(suite_hash="0" * 64, suite_name="bench-scale", endpoints=[ep.public()],
                   strategies=[StrategySpec(name=s) for s in STRATEGIES], scorers=["exact_match", "f1"])
    with db.begin() as conn:
        suite_id = conn.execute(insert(SuiteRecord.__table__).values(  # type: ignore[attr-defined]
            name="bench-scale", version=1, content_hash=f"{seed:064d}", description="", default_scorers=[],
            meta={}, n_documents=0, n_questions=n_questions, n_chars=0, created_at=now)).inserted_primary_key[0]
        run_id = conn.execute(insert(RunRecord.__table__).values(  # type: ignore[attr-defined]
            suite_id=suite_id, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash, status="completed",
            attempt=1, total_cases=n_cases, created_at=now, started_at=now, finished_at=now)).inserted_primary_key[0]
        first = (conn.execute(select(CaseRecord.__table__.c.id).order_by(  # type: ignore[attr-defined]
            CaseRecord.__table__.c.id.desc()).limit(1)).scalar() or 0) + 1  # type: ignore[attr-defined]
        light: list[dict[str, Any]] = []
        detail: list[dict[str, Any]] = []
        for i in range(n_cases):
            q, strategy = f"q{i // len(STRATEGIES):06d}", STRATEGIES[i % len(STRATEGIES)]
            error = rng.random() < 0.03
            em = float(rng.random() < 0.6)
            context = int(2 ** rng.uniform(10, 17))
            prompt = context if strategy == "long_context" else 1400
            light.append({
                "id": first + i, "run_id": run_id, "case_id": case_id_for(q, "bench", strategy), "position": i,
                "question_id": q, "endpoint": "bench", "strategy": strategy, "strategy_name": strategy,
                "outcome": "error" if error else "ok", "error_class": "server_error" if error else None,
                "error_message": "HTTP 500" if error else None,
                "scores": {"exact_match": None, "f1": None} if error else {"exact_match": em,
                                                                             "f1": min(1.0, em + rng.random() / 3)},
                "prompt_tokens": None if error else prompt, "completion_tokens": None if error else 8,
                "cached_tokens": None if error else int(prompt * rng.random()), "reasoning_tokens": None,
                "estimated_prompt_tokens": prompt, "cost_usd": None if error else prompt * 1e-6,
                "latency_s": rng.uniform(0.2, 8.0), "ttft_s": rng.uniform(0.05, 2.0), "context_tokens": context,
                "depth": float(rng.choice(range(0, 101, 10))), "route": None, "n_calls": 1, "from_cache": False,
                "finished_at": now})
            detail.append({"case_pk": first + i, "prompt": [{"role": "user", "content": f"Question {q}? " * 20}],
                           "answer": "42", "reasoning": "", "retrieved": [], "calls": [{"role": "answer"}],
                           "extra": {"steps": [], "truncation": None, "metadata": {}}})
            if len(light) >= BATCH or i == n_cases - 1:
                conn.execute(insert(CaseRecord.__table__), light)  # type: ignore[attr-defined]
                conn.execute(insert(CaseDetailRecord.__table__), detail)  # type: ignore[attr-defined]
                light, detail = [], []
    return int(run_id)


def measure_kind(url: str, n_cases: int, sizes: Sizes, log: Callable[[str], None]) -> dict[str, Any]:
    from app.db import make_engine
    from app.models import CaseRecord
    from app.services.statistics import _NAMES

    db = make_engine(url)
    try:
        start = time.perf_counter()
        run_id = insert_run(db, n_cases)
        insert_s = time.perf_counter() - start
        log(f"  inserted {n_cases:,} cases in {insert_s:.1f} s")
        from app.services import run_views

        start = time.perf_counter()
        run_views.warm(db, run_id)  # what the execution does when a run finishes
        finish_s = time.perf_counter() - start
        log(f"  summary and report data computed and stored in {finish_s:.1f} s")
        query = select(*(getattr(CaseRecord, name) for name in _NAMES)).where(CaseRecord.run_id == run_id).order_by(  # type: ignore[arg-type]
            CaseRecord.position, CaseRecord.id)  # type: ignore[arg-type]
        with process([sys.executable, "-m", "bench.serve_app", url], ready_prefix="BENCH_APP_PORT=",
                     timeout_s=60) as (_, port), httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                                              timeout=300) as client:
            def timed(path: str, **headers: str) -> Callable[[int], float]:
                def call(rep: int) -> float:
                    t = time.perf_counter()
                    r = client.get(path, headers=headers)
                    seconds = time.perf_counter() - t
                    r.raise_for_status()
                    return 1000 * seconds
                return call

            def bare(rep: int) -> float:
                t = time.perf_counter()
                with db.connect() as conn:
                    rows = conn.execute(query).all()
                seconds = time.perf_counter() - t
                if len(rows) != n_cases:
                    raise RuntimeError(f"the query returned {len(rows)} rows for {n_cases} cases")
                return 1000 * seconds

            summary = client.get(f"/api/runs/{run_id}/summary")
            summary.raise_for_status()
            if summary.json().get("n") not in (None, n_cases):
                raise RuntimeError(f"the summary counts {summary.json().get('n')} cases, not {n_cases}")
            samples = alternate({"summary": timed(f"/api/runs/{run_id}/summary", **{"x-bench-cold": "1"}),
                                 "summary_warm": timed(f"/api/runs/{run_id}/summary"),
                                 "page": timed(f"/runs/{run_id}", **{"x-bench-cold": "1"}),
                                 "page_warm": timed(f"/runs/{run_id}"), "query": bare},
                                sizes.scale_requests, log=None)
        return {"samples": samples, "insert_s": insert_s, "finish_s": finish_s}
    finally:
        db.dispose()


def run(sizes: Sizes, log: Callable[[str], None] = print, *, kinds: tuple[str, ...] = KINDS) -> list[Row]:
    n = sizes.scale_cases
    cond = (f"{n:,} stored cases in one run (2 strategies), served over 127.0.0.1 by uvicorn in its own process; "
            f"p50 of {sizes.scale_requests} requests after one warm-up, alternating")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ctxeval-bench-scale-") as tmp, \
            databases(kinds, Path(tmp), system=False) as (factories, unavailable):
        for kind in kinds:
            label = "SQLite" if kind == "sqlite" else "PostgreSQL"
            whats = (f"Run summary API at scale ({label})", f"Run report page at scale ({label})")
            if kind not in factories:
                rows += [skipped(NAME, w, cond, f"skipped: {unavailable[kind]}") for w in whats]
                continue
            log(f"  {label}")
            got = measure_kind(factories[kind](kind), n, sizes, log)
            s = got["samples"]
            ref = Figure(f"SELECT of the light columns ({label})", "ms", s["query"], higher_is_better=False,
                         detail=f"p95 {percentile(s['query'], 95):.0f} ms")
            extra = {"cases": n, "insert_s": got["insert_s"], "finish_s": got["finish_s"], "samples": s,
                     "page_warm_p50_ms": Figure("", "ms", s["page_warm"]).value,
                     "summary_warm_p50_ms": Figure("", "ms", s["summary_warm"]).value}
            stored = f"; computed and stored once when the run finished ({got['finish_s']:.1f} s)"
            rows.append(Row(bench=NAME, what=whats[0], conditions=cond + "; in-process copies emptied before each request",
                            reference=ref, extra=extra,
                            ctxeval=Figure("GET /api/runs/{id}/summary (first view)", "ms", s["summary"],
                                           higher_is_better=False,
                                           detail=f"p95 {percentile(s['summary'], 95):.0f} ms; warm p50 "
                                                  f"{extra['summary_warm_p50_ms']:.1f} ms{stored}")))
            rows.append(Row(bench=NAME, what=whats[1], conditions=cond + "; in-process copies emptied before each request",
                            reference=ref, extra=extra,
                            ctxeval=Figure("GET /runs/{id} (first view)", "ms", s["page"], higher_is_better=False,
                                           detail=f"p95 {percentile(s['page'], 95):.0f} ms; warm p50 "
                                                  f"{extra['page_warm_p50_ms']:.0f} ms{stored}")))
    return rows
