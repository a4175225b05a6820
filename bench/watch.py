"""Waits in its own process for a run to leave ``queued``/``running``: the durable benchmarks' clock.

``python -m bench.watch DATABASE_URL`` connects, prints ``BENCH_WATCH_READY=``, reads a run id from
stdin, reads that run's status every 20 ms and prints ``BENCH_WATCH_DONE=<perf_counter> <status>`` as
soon as it has another one (``time.perf_counter`` is the system's monotonic clock, the same in every
process of this machine). With ``--first-case`` it also prints ``BENCH_WATCH_FIRST=<perf_counter>``
when it first sees a stored case of the run (before the DONE line). Polling from the measured
process would take its interpreter lock from the execution 50 times a second (about 0.1 s of CPU in a
2.5 s run); a service's real clients poll it from elsewhere too. :func:`watching` and
:func:`wait_for_run` are the benchmark's side of it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

from sqlalchemy import text

from app.db import make_engine
from bench.common import process, wait_line

POLL_S = 0.02


@contextlib.contextmanager
def watching(database_url: str, *, first_case: bool = False) -> Iterator[subprocess.Popen[str]]:
    """A watcher process on ``database_url``, connected and waiting for a run id."""
    cmd = [sys.executable, "-m", "bench.watch", database_url] + (["--first-case"] if first_case else [])
    with process(cmd, ready_prefix="BENCH_WATCH_READY=", stdin=True) as (watcher, _):
        yield watcher


def wait_for_run(watcher: subprocess.Popen[str], run_id: int, timeout_s: float) -> tuple[float, float | None]:
    """``perf_counter`` when the run left queued/running, and when its first case was stored (None
    unless the watcher was started with ``first_case``, or no case was stored)."""
    assert watcher.stdin is not None
    watcher.stdin.write(f"{run_id} {timeout_s}\n")
    watcher.stdin.flush()
    first = None
    while not (line := wait_line(watcher, "BENCH_WATCH_", timeout_s + 30)).startswith("DONE="):
        first = float(line.removeprefix("FIRST="))
    done = line.removeprefix("DONE=")
    if done.startswith("nan"):
        raise RuntimeError(f"the durable run did not finish: {done.split(' ', 1)[1]}")
    return float(done.split()[0]), first


def main(argv: list[str]) -> int:
    first_case = "--first-case" in argv
    engine = make_engine(next(a for a in argv if not a.startswith("--")))
    try:
        with engine.connect() as conn:
            print("BENCH_WATCH_READY=", flush=True)
            line = sys.stdin.readline()
            if not line.strip():
                return 1
            run_id, timeout_s = int(line.split()[0]), float(line.split()[1])  # see wait_for_run
            deadline = time.perf_counter() + timeout_s
            while True:
                status = conn.execute(text("SELECT status FROM run WHERE id = :id"), {"id": run_id}).scalar()
                if first_case and conn.execute(text('SELECT 1 FROM "case" WHERE run_id = :id LIMIT 1'),
                                               {"id": run_id}).first():
                    print(f"BENCH_WATCH_FIRST={time.perf_counter()!r}", flush=True)
                    first_case = False
                conn.commit()
                if status not in ("queued", "running"):
                    print(f"BENCH_WATCH_DONE={time.perf_counter()!r} {status}", flush=True)
                    return 0
                if time.perf_counter() > deadline:
                    print(f"BENCH_WATCH_DONE=nan timeout after {timeout_s:.0f} s", flush=True)
                    return 0
                time.sleep(POLL_S)
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
