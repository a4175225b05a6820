"""``python -m bench.worker_child DATABASE_URL EXECUTOR_ID``: ``ctxeval worker`` (the same start, the
same executor) with two counters for the workers benchmark: every SQL statement this process sends
(all its SQLAlchemy engines: the app database and DBOS's system database; an ``executemany`` counts
once) and its CPU time, its case writer process's included. Prints ``BENCH_WORKER=ready`` once executing, and one ``BENCH_STATS={...}`` line
per SIGUSR1; stops on SIGTERM like the worker."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys


def main() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from app.cli.service import migrate_all
    from app.execution import workflows as execution
    from app.settings import Settings

    counts = {"statements": 0}

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(*_: object) -> None:
        counts["statements"] += 1

    settings = Settings(database_url=sys.argv[1], execution="inprocess", executor_id=sys.argv[2])
    migrate_all(settings)

    def stats() -> None:
        from bench.durable_costs import writer_usage

        usage = resource.getrusage(resource.RUSAGE_SELF)
        writer_statements, writer_cpu = writer_usage()  # its case writer process's, counted there
        print("BENCH_STATS=" + json.dumps({"statements": counts["statements"] + writer_statements,
                                           "cpu_s": usage.ru_utime + usage.ru_stime + writer_cpu}), flush=True)

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, stats)
        await execution.start_executor(settings)
        print("BENCH_WORKER=ready", flush=True)
        try:
            await stop.wait()
        finally:
            await execution.stop_executor()

    asyncio.run(work())


if __name__ == "__main__":
    main()
