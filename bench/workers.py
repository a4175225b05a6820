"""8. Scale out: worker processes on PostgreSQL.

The service's API in one process (``ctxeval serve --execution none``) and W worker processes
(``bench.worker_child``: ``ctxeval worker`` with a statement counter), all on one fresh PostgreSQL
database, against the fast fake server. One run of N short cases is created over the API and timed
until its row says completed. Per case: the CPU seconds the workers spent (summed over them, so
cases/s per worker core = 1 / CPU per case) and the SQL statements they sent to PostgreSQL (app and
DBOS system database; the API process's own statements are not counted). The reference is the
in-memory runner on the same cases. What the figures mean for sizing: ``docs/deployment.md``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, Figure, Row, Sizes, alternate, child_env, fast_fake, skipped, stop, wait_line
from bench.data import short_suite
from bench.dbs import databases
from bench.engine import endpoint, run_ctxeval
from bench.fakeserver import MODEL, bind

NAME = "workers"
WORKERS = 4
# in flight across all workers: every process holds a connection per concurrent database operation, and
# a shared PostgreSQL's max_connections (100 by default) is what a drill on one machine runs into first
CONCURRENCY = 16


@contextmanager
def _started(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    with open(log, "a", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        yield proc
    finally:
        stop(proc)


def _stats(workers: list[subprocess.Popen[str]]) -> list[dict[str, float]]:
    for w in workers:
        w.send_signal(signal.SIGUSR1)
    return [json.loads(wait_line(w, "BENCH_STATS=", 30)) for w in workers]


def run_workers(url: str, base_url: str, n: int, concurrency: int, n_workers: int, folder: Path, *,
                salt: str) -> dict[str, Any]:
    sock = bind()
    port = sock.getsockname()[1]
    sock.close()
    with ExitStack() as stack:
        api = stack.enter_context(_started(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--database-url",
             url, "--execution", "none", "--auth", "off"], folder / "api.log"))
        workers = [stack.enter_context(_started([sys.executable, "-m", "bench.worker_child", url, f"bench-w{i}"],
                                                folder / f"worker-{i}.log")) for i in range(n_workers)]
        for w in workers:
            wait_line(w, "BENCH_WORKER=", 120)
        client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60))
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {(folder / 'api.log').read_text()[-2000:]}")
            time.sleep(0.1)
        r = client.post("/api/endpoints", json={"name": "bench", "base_url": base_url, "model": MODEL,
                                                "concurrency": concurrency, "max_output_tokens": 16,
                                                "max_retries": 0})
        r.raise_for_status()
        eid = r.json()["id"]
        r = client.post("/api/suites", json=short_suite(n, salt=salt).model_dump(mode="json"))
        r.raise_for_status()
        sid = r.json()["id"]
        time.sleep(1.5)  # DBOS lists queues on a 1 s tick: the new endpoint's queue is seen by every worker
        connections = stack.enter_context(_ConnectionPeak(url))
        before = _stats(workers)
        start = time.perf_counter()
        r = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                           "strategies": [{"name": "long_context"}]})
        r.raise_for_status()
        run_id = r.json()["id"]
        deadline = time.monotonic() + max(300.0, n * 0.5)
        while True:
            run = client.get(f"/api/runs/{run_id}").json()
            if run["status"] not in ("queued", "running"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the run did not finish: {run['progress']}")
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        after = _stats(workers)
        if run["status"] != "completed" or run["progress"]["done"] != n:
            raise RuntimeError(f"the run ended {run['status']} with {run['progress']['done']}/{n} cases: "
                               f"{run.get('error')}")
    per_worker = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before, strict=True)]
    return {"seconds": seconds, "per_worker": per_worker,
            "cpu_ms_per_case": 1000 * sum(w["cpu_s"] for w in per_worker) / n,
            "statements_per_case": sum(w["statements"] for w in per_worker) / n,
            "peak_connections": connections.peak, "processes": n_workers + 1}


class _ConnectionPeak:
    """The most connections the database had open at once while the block ran (sampled every 0.1 s)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = make_url(url)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psycopg

        u = self.url
        with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                             dbname="postgres", autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                   (u.database,)).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                self._stop.wait(0.1)

    def __enter__(self) -> _ConnectionPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if exc[0] is not None:  # the figure explains many failures (PostgreSQL's max_connections)
            exc[1].args = (*exc[1].args, f"{self.peak} PostgreSQL connections at peak")  # type: ignore[union-attr]


def run(sizes: Sizes, log: Callable[[str], None] = print, *, n_workers: int = WORKERS) -> list[Row]:
    n, conc = sizes.workers_cases, min(sizes.concurrency, CONCURRENCY)
    what = f"Durable execution with {n_workers} worker processes (PostgreSQL)"
    cond = (f"{n} long_context cases, concurrency {conc}, fake server {sizes.latency_ms:g} ms; API process "
            f"(execution none) + {n_workers} `ctxeval worker` processes on one fresh PostgreSQL database per rep; "
            f"timed from POST /api/runs to status completed; median of {sizes.heavy_reps} alternating reps")
    with tempfile.TemporaryDirectory(prefix="ctxeval-bench-workers-") as tmp, \
            databases(("postgres",), Path(tmp)) as (factories, unavailable), fast_fake(sizes.latency_ms) as fake:
        if "postgres" not in factories:
            return [skipped(NAME, what, cond, f"skipped: {unavailable.get('postgres', 'not available')}")]
        ep = endpoint(fake.base_url, conc)
        runs: list[dict[str, Any]] = []

        def memory(rep: int) -> float:
            seconds, _ = asyncio.run(run_ctxeval(short_suite(n, salt=f" m{rep}"), ep))
            return n / seconds

        def durable(rep: int) -> float:
            folder = Path(tmp) / f"rep-{rep}"
            folder.mkdir()
            got = run_workers(factories["postgres"](f"w{rep + 1}"), fake.base_url, n, conc, n_workers, folder,
                              salt=f" w{rep}")
            runs.append(got)
            log(f"    {n / got['seconds']:.1f} cases/s, {got['cpu_ms_per_case']:.1f} ms worker CPU and "
                f"{got['statements_per_case']:.1f} statements per case")
            return n / got["seconds"]

        samples = alternate({"memory": memory, "workers": durable}, sizes.heavy_reps, warmup=False, log=log)
    mid = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    detail = (f"{mid['cpu_ms_per_case']:.1f} ms of worker CPU per case (≈ {1000 / mid['cpu_ms_per_case']:.0f} "
              f"cases/s per worker core), {mid['statements_per_case']:.1f} SQL statements per case, "
              f"{mid['peak_connections']} PostgreSQL connections at peak")
    return [Row(bench=NAME, what=what, conditions=cond,
                ctxeval=Figure(f"service, {n_workers} workers", "cases/s", samples["workers"], detail=detail),
                reference=Figure("in-memory runner, same cases", "cases/s", samples["memory"]),
                extra={"cases": n, "workers": n_workers, "samples": samples, "runs": runs})]
