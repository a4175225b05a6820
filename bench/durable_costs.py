"""What one durable case costs the service: database statements, CPU, and bytes stored.

``python -m bench.durable_costs`` runs, in one process, a durable run over the API of an app that
executes in-process (DBOS), against the benchmark's fake server in its own process, and counts:

- statements per case, by SQLAlchemy's ``before_cursor_execute`` event (an ``executemany`` counts
  once), split into the app database and DBOS's system database; the watcher that waits for the
  run's status is a process of its own (:mod:`bench.watch`), neither counted nor in the CPU figure;
- CPU per case: ``time.process_time()`` of this process (API, executor, DBOS threads) and the CPU of
  its case writer process from creating the run to its completion, divided by the cases (the writer
  process's statements are counted by that process and added to the app database's); the in-memory
  runner on the same cases in the same process gives the engine's own share;
- seconds from ``POST /api/runs`` until the first case is stored (an upper bound on the time to the
  first request: the fake server answers at once);
- bytes stored per case for a long-context run over a corpus of about 4k and of about 1M tokens
  shared by every question: the case's rows (``case`` + ``case_detail``), and the run's prompt blobs
  apart (stored once per run).

Numbers go to stdout as JSON and a short table; docs/benchmarking.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, text

from bench.common import fast_fake
from bench.data import short_suite
from bench.dbs import databases
from bench.fakeserver import MODEL
from bench.watch import wait_for_run, watching
from evals.domain import Document, Question, Suite


class Counter:
    def __init__(self, app_engine: sa.engine.Engine, skip: sa.engine.Engine) -> None:
        self.app, self.system, self._app_engine, self._skip = 0, 0, app_engine, skip
        self.on = False

    def __call__(self, conn: Any, *_: Any) -> None:
        if not self.on or conn.engine is self._skip:
            return
        if conn.engine is self._app_engine:
            self.app += 1
        else:
            self.system += 1


def writer_usage() -> tuple[int, float]:
    """Statements and CPU seconds so far of this process's case writer process (none for a writer
    thread: its statements and CPU are this process's)."""
    from app.execution import workflows
    from app.execution.writer import ProcessCaseWriter

    writer = workflows.runtime().writer
    if not isinstance(writer, ProcessCaseWriter) or writer.child_pid is None:
        return 0, 0.0
    try:
        fields = Path(f"/proc/{writer.child_pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:  # not Linux: its CPU is not known
        return writer.statements, 0.0
    return writer.statements, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def durable_run(url: str, base_url: str, suite: Suite, concurrency: int, *, strategy: str = "long_context",
                window: int | None = None) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from app.db import make_engine
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(database_url=url, execution="inprocess", auth="off")
    app_db, watcher = make_engine(url), make_engine(url)
    counter = Counter(app_db, watcher)
    event.listen(sa.engine.Engine, "before_cursor_execute", counter)
    try:
        with watching(url, first_case=True) as watch, TestClient(create_app(settings, db=app_db), base_url="http://127.0.0.1") as client:
            body: dict[str, Any] = {"name": "bench", "base_url": base_url, "model": MODEL,
                                    "concurrency": concurrency, "max_output_tokens": 16, "max_retries": 0}
            if window:
                body["context_window"] = window
            eid = client.post("/api/endpoints", json=body).json()["id"]
            sid = client.post("/api/suites", json=suite.model_dump(mode="json")).json()["id"]
            time.sleep(1.2)  # any per-endpoint queue a version registers is listed by DBOS by now
            client.get("/api/runs", params={"limit": 1}).raise_for_status()  # the router's first-request build
            counter.on = True
            statements0, child_cpu0 = writer_usage()
            cpu, start = time.process_time(), time.perf_counter()
            run_id = client.post("/api/runs", json={"suite_id": sid, "endpoint_ids": [eid],
                                                    "strategies": [{"name": strategy}]}).json()["id"]
            done, first = wait_for_run(watch, run_id, 600)
            cpu, wall = time.process_time() - cpu, done - start
            first_case_s = first - start if first is not None else None
            counter.on = False
            statements1, child_cpu1 = writer_usage()
            counter.app += statements1 - statements0  # the writer process's (app database) statements
            cpu += child_cpu1 - child_cpu0
            run = client.get(f"/api/runs/{run_id}").json()
            n = run["progress"]["done"]
            with watcher.connect() as conn:
                rows = conn.execute(text(
                    "SELECT count(*), sum(length(CAST(d.prompt AS TEXT)) + length(d.answer) + length(d.reasoning)"
                    " + length(CAST(d.retrieved AS TEXT)) + length(CAST(d.calls AS TEXT))"
                    " + length(CAST(d.extra AS TEXT))) FROM case_detail d JOIN \"case\" c ON c.id = d.case_pk "
                    "WHERE c.run_id = :r"), {"r": run_id}).one()
                blob = conn.execute(text("SELECT count(*), coalesce(sum(length(text)), 0) FROM prompt_blob "
                                         "WHERE run_id = :r"), {"r": run_id}).one() if _has(conn, "prompt_blob") \
                    else (0, 0)
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", counter)
        watcher.dispose()
        app_db.dispose()
    return {"status": run["status"], "cases": n, "wall_s": wall, "first_case_stored_s": first_case_s, "cases_per_s": n / wall,
            "cpu_ms_per_case": 1000 * cpu / n, "app_statements_per_case": counter.app / n,
            "system_statements_per_case": counter.system / n,
            "detail_chars_per_case": (rows[1] or 0) / max(rows[0], 1), "blobs": blob[0], "blob_chars": blob[1]}


def memory_run(base_url: str, suite: Suite, concurrency: int) -> dict[str, Any]:
    """The in-memory runner on the same cases in this process: the engine's own share of the CPU."""
    import asyncio

    from bench.engine import endpoint, run_ctxeval

    cpu = time.process_time()
    seconds, results = asyncio.run(run_ctxeval(suite, endpoint(base_url, concurrency)))
    cpu = time.process_time() - cpu
    return {"cases": len(results), "cases_per_s": len(results) / seconds, "cpu_ms_per_case": 1000 * cpu / len(results)}


def _has(conn: Any, table: str) -> bool:
    return table in sa.inspect(conn).get_table_names()


def corpus_suite(n_questions: int, corpus_chars: int) -> Suite:
    """One long document every question reads (its answer at the end)."""
    sentence = "The grass is green and the sky is blue, and the river runs to the sea. "
    body = (sentence * (corpus_chars // len(sentence) + 1))[:corpus_chars]
    docs = [Document(id="corpus", text=body + " The code of every item is: 42.")]
    questions = [Question(id=f"q{i}", question=f"What is the code of item {i}?", answers=["42"])
                 for i in range(n_questions)]
    return Suite(name=f"corpus-{corpus_chars}", documents=docs, questions=questions, default_scorers=["exact_match"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--kinds", default="sqlite,postgres")
    p.add_argument("--storage-questions", type=int, default=20)
    p.add_argument("--no-storage", action="store_true")
    args = p.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    out: dict[str, Any] = {"memory": {}, "throughput": {}, "storage": {}}
    with tempfile.TemporaryDirectory(prefix="ctxeval-costs-") as tmp, \
            databases(kinds, Path(tmp)) as (factories, unavailable), fast_fake(0) as fake:
        memory_run(fake.base_url, short_suite(8, salt=" mwarm"), args.concurrency)
        m = out["memory"] = memory_run(fake.base_url, short_suite(args.cases, salt=" memory"), args.concurrency)
        print(f"in-memory runner: {m['cases']} cases {m['cases_per_s']:.0f}/s, {m['cpu_ms_per_case']:.2f} ms CPU/case")
        for kind in kinds:
            if kind not in factories:
                print(f"{kind}: skipped ({unavailable.get(kind)})")
                continue
            durable_run(factories[kind]("warm"), fake.base_url, short_suite(8, salt=" warm"), args.concurrency)
            r = durable_run(factories[kind]("t"), fake.base_url, short_suite(args.cases, salt=f" {kind}"),
                            args.concurrency)
            out["throughput"][kind] = r
            print(f"{kind}: {r['cases']} cases {r['cases_per_s']:.0f}/s, {r['app_statements_per_case']:.2f} app + "
                  f"{r['system_statements_per_case']:.2f} system statements/case, {r['cpu_ms_per_case']:.2f} ms CPU/case, "
                  f"first case stored after {r['first_case_stored_s']:.2f} s")
            if args.no_storage:
                continue
            for label, chars in (("4k", 4_000 * 4), ("1M", 1_000_000 * 4)):
                r = durable_run(factories[kind](f"s{label}"), fake.base_url,
                                corpus_suite(args.storage_questions, chars), 4, window=2_000_000)
                out["storage"].setdefault(kind, {})[label] = r
                print(f"{kind} {label} tokens: {r['detail_chars_per_case']:.0f} chars of case detail per case, "
                      f"{r['blobs']} blob(s) of {r['blob_chars']:,} chars per run ({r['status']})")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
