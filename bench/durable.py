"""2. Durable execution overhead.

The same N short cases against the same fake server, once through the service's durable execution
(a run created over the API of an app executing in-process with DBOS, on SQLite and on PostgreSQL)
and once through the in-memory runner. The durable figure is timed from ``POST /api/runs`` until the
run's row says completed (read straight from the database every 20 ms by a watcher process,
:mod:`bench.watch`); each repetition starts a fresh, migrated database, so no response cache can
answer. Before the clock starts the app has answered one request of the runs router (FastAPI builds a
router's route state at its first request).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Figure, Row, Sizes, alternate, fast_fake, skipped
from bench.data import short_suite
from bench.dbs import databases
from bench.engine import endpoint, run_ctxeval
from bench.fakeserver import MODEL
from bench.watch import wait_for_run, watching
from evals.domain import Outcome

NAME = "durable"
KINDS = ("sqlite", "postgres")


def run_durable(database_url: str, base_url: str, n: int, concurrency: int, *, salt: str,
                polling_s: float = 0.5) -> tuple[float, dict[str, Any]]:
    """Seconds from creating the run to its completion, and the finished run as the API shows it."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(database_url=database_url, execution="inprocess", auth="off",
                        queue_polling_interval_s=polling_s)
    suite = short_suite(n, salt=salt)
    # the clock stops in a watcher process: polling from this one would take the execution's GIL
    # the service answers only its own hosts: speak to it as 127.0.0.1, not as "testserver"
    with watching(database_url) as watcher, \
            TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        r = client.post("/api/endpoints", json={"name": "bench", "base_url": base_url, "model": MODEL,
                                                "concurrency": concurrency, "max_output_tokens": 16,
                                                "max_retries": 0})
        r.raise_for_status()
        eid = r.json()["id"]
        r = client.post("/api/suites", json=suite.model_dump(mode="json"))
        r.raise_for_status()
        sid = r.json()["id"]
        # FastAPI (0.165) builds a router's route state at its first request, tens of ms: a service
        # has paid that long before a run is created, so it stays out of the timed window
        client.get("/api/runs", params={"limit": 1}).raise_for_status()
        start = time.perf_counter()
        r = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                           "strategies": [{"name": "long_context"}]})
        r.raise_for_status()
        run_id = r.json()["id"]
        seconds = wait_for_run(watcher, run_id, max(120.0, n * 0.5))[0] - start
        run = client.get(f"/api/runs/{run_id}").json()
    if run["status"] != "completed" or run["progress"]["done"] != n:
        raise RuntimeError(f"the durable run ended {run['status']} with {run['progress']['done']}/{n} cases: "
                           f"{run.get('error')}")
    return seconds, run


def run(sizes: Sizes, log: Callable[[str], None] = print, *, kinds: tuple[str, ...] = KINDS) -> list[Row]:
    n, conc = sizes.durable_cases, sizes.concurrency
    cond = (f"{n} long_context cases, concurrency {conc}, fake server {sizes.latency_ms:g} ms; DBOS in-process, "
            "queue polling 0.5 s (the service default), a fresh database per rep; timed from POST /api/runs "
            f"to status completed; median of {sizes.heavy_reps} alternating reps")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ctxeval-bench-durable-") as tmp, \
            databases(kinds, Path(tmp)) as (factories, unavailable), fast_fake(sizes.latency_ms) as fake:
        ep = endpoint(fake.base_url, conc)
        info: dict[str, Any] = {"runs": {}}

        def memory(rep: int, size: int = n) -> float:
            seconds, results = asyncio.run(run_ctxeval(short_suite(size, salt=f" m{rep}"), ep))
            if any(r.outcome == Outcome.error for r in results):
                raise RuntimeError("the in-memory run had errors")
            return size / seconds

        def durable(kind: str) -> Callable[..., float]:
            def variant(rep: int, size: int = n) -> float:
                url = factories[kind](f"{kind}-{rep + 1}")
                seconds, finished = run_durable(url, fake.base_url, size, conc, salt=f" {kind}{rep}")
                if size == n:
                    info["runs"].setdefault(kind, []).append(finished["progress"]["outcomes"])
                return size / seconds
            return variant

        variants: dict[str, Callable[..., float]] = {"memory": memory}
        variants.update({kind: durable(kind) for kind in kinds if kind in factories})
        log(f"  {n} cases, durable on {', '.join(k for k in kinds if k in factories)} vs in-memory")
        for call in variants.values():  # warm-up at a small size: imports, first connections
            call(-1, min(n, 8))
        samples = alternate(variants, sizes.heavy_reps, warmup=False, log=log)
        reference = Figure("in-memory runner, same cases", "cases/s", samples["memory"])
        for kind in kinds:
            what = f"Durable execution throughput ({'SQLite' if kind == 'sqlite' else 'PostgreSQL'})"
            if kind not in factories:
                rows.append(skipped(NAME, what, cond, f"skipped: {unavailable.get(kind, 'not available')}"))
                continue
            rows.append(Row(bench=NAME, what=what, conditions=cond,
                            ctxeval=Figure(f"service, DBOS on {kind}", "cases/s", samples[kind]),
                            reference=reference, extra={"cases": n, "samples": samples, **info}))
    return rows
