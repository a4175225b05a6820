"""Waits in its own process for a run to leave ``queued``/``running``: the durable benchmarks' clock.

``python -m bench.watch DATABASE_URL`` connects, prints ``BENCH_WATCH_READY=``, reads a run id from
stdin, reads that run's status every 20 ms and prints ``BENCH_WATCH_DONE=<perf_counter> <status>`` as
soon as it has another one (``time.perf_counter`` is the system's monotonic clock, the same in every
process of this machine). With ``--first-case`` it also prints ``BENCH_WATCH_FIRST=<perf_counter>``
when it first sees a stored case of the run (before the DONE line). Polling from the measured process would take its interpreter lock from the
execution 50 times a second (about 0.1 s of CPU in a 2.5 s run); a service's real clients poll it from
elsewhere too.
"""

from __future__ import annotations

import sys
import time

from sqlalchemy import text

from app.db import make_engine

POLL_S = 0.02


def main(argv: list[str]) -> int:
    first_case = "--first-case" in argv
    engine = make_engine(next(a for a in argv if not a.startswith("--")))
    try:
        with engine.connect() as conn:
            print("BENCH_WATCH_READY=", flush=True)
            line = sys.stdin.readline()
            if not line.strip():
                return 1
            run_id, timeout_s = int(line.split()[0]), float(line.split()[1])
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
