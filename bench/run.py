"""``python -m bench.run [--quick] [--only NAME ...] [--out docs/benchmarks.md]``: every benchmark in one go.

Prints the machine, runs each benchmark (each comparison alternating its variants within the run),
prints the table and writes it to ``--out`` with the raw numbers beside it (``.json``). A benchmark
that cannot run here says why in its row; one that fails says so too, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, Sizes, machine
from bench.report import machine_line, plain_table, write

BENCHMARKS = {
    "engine": "Engine overhead vs the limit (fake server, bare asyncio + httpx)",
    "durable": "Durable execution (DBOS on SQLite and PostgreSQL) vs the in-memory runner",
    "peer": "Versus a peer: Inspect AI on the same questions",
    "retrieval": "Retrieval preparation: chunk and index 1M tokens vs bm25s; query latency",
    "prefix": "Prefix caching on llama.cpp (bundled model): prefix-aware vs shuffled",
    "scale": "Service at scale: summary API and report page vs a bare SELECT",
    "memory": "Memory and wall time of a rag run over a 1M-token suite, index built and cached",
    "workers": "Scale out: 4 worker processes on PostgreSQL vs the in-memory runner",
}


def run_one(name: str, sizes: Sizes, log: Any, **kw: Any) -> list[Row]:
    module = importlib.import_module(f"bench.{name}")
    return module.run(sizes, log, **kw)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes: minutes on 2 cores")
    size.add_argument("--tiny", action="store_true", help="the smallest sizes (seconds; the smoke test's)")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                   help=f"run only these: {', '.join(BENCHMARKS)}")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the Markdown table")
    p.add_argument("--json", type=Path, default=None, help="raw numbers (default: --out with .json)")
    p.add_argument("--no-peer-install", action="store_true",
                   help="do not create bench/.venv-peer; the peer row says it is missing")
    args = p.parse_args(argv)

    sizes = Sizes.tiny() if args.tiny else Sizes.quick_sizes() if args.quick else Sizes.full()
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    names = args.only or list(BENCHMARKS)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    info = machine()
    print(f"ctxeval benchmarks ({mode}) on {machine_line(info)}", flush=True)

    def log(message: str) -> None:
        print(message, flush=True)

    rows: list[Row] = []
    timings: dict[str, Any] = {}
    failed = False
    for name in names:
        print(f"\n[{name}] {BENCHMARKS[name]}", flush=True)
        t = time.perf_counter()
        kw = {"install": not args.no_peer_install} if name == "peer" else {}
        try:
            got = run_one(name, sizes, log, **kw)
            timings[name] = {"seconds": time.perf_counter() - t, "error": None}
        except Exception as e:  # one benchmark's failure must not lose the others' numbers
            failed = True
            traceback.print_exc()
            message = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            got = [Row(bench=name, what=BENCHMARKS[name], conditions="", skipped=f"failed: {message}")]
            timings[name] = {"seconds": time.perf_counter() - t, "error": message}
        print(f"  ({timings[name]['seconds']:.0f} s)", flush=True)
        rows.extend(got)

    wall = time.perf_counter() - t0
    print("\n" + plain_table(rows))
    print(f"\nmachine: {machine_line(info)}\ntotal {wall / 60:.1f} min")
    json_out = args.json or args.out.with_suffix(".json")
    write(rows, args.out, json_out, machine=info, mode=mode, sizes=asdict(sizes), started=started, wall_s=wall,
          timings=timings, only=args.only)
    print(f"wrote {args.out} and {json_out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
