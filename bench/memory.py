"""7. Memory: peak RSS of a run over a large suite.

A suite of about 1M tokens with N questions, run with the ``rag`` strategy (BM25 over the whole corpus,
top 5 chunks) against the fast fake server, through ``ctxeval run`` in a fresh process. The reference
is the floor for the same work in a fresh process with the same imports: the suite loaded and one
request of the same size per question sent from a bare asyncio + httpx loop. Peak RSS is each
process's own high-water mark (VmHWM).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.common import Figure, Row, Sizes, alternate, fast_fake, process
from bench.data import corpus_suite
from bench.fakeserver import MODEL
from evals.suites.io import dump_suite

NAME = "memory"


def child(mode: str, run_file: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.memory_child", mode, str(run_file), str(out)]
    with process(cmd, ready_prefix="BENCH_MEMORY=", timeout_s=900) as (proc, line):
        proc.wait(timeout=60)
        return json.loads(line)  # type: ignore[no-any-return]


def run(sizes: Sizes, log: Callable[[str], None] = print) -> list[Row]:
    tokens, n, conc = sizes.memory_corpus_tokens, sizes.memory_questions, sizes.concurrency
    info: dict[str, Any] = {"runs": {"ctxeval": [], "bare": []}}
    with tempfile.TemporaryDirectory(prefix="ctxeval-bench-memory-") as tmp, fast_fake(sizes.latency_ms) as fake:
        folder = Path(tmp)
        suite = corpus_suite(tokens, n, seed=11)
        dump_suite(suite, folder / "suite.json")
        info["suite_bytes"] = (folder / "suite.json").stat().st_size
        run_file = folder / "run.yaml"
        run_file.write_text(yaml.safe_dump({
            "suite": "suite.json", "cache": False, "strategies": [{"name": "rag"}],
            "endpoints": [{"name": "bench", "base_url": fake.base_url, "model": MODEL, "concurrency": conc,
                           "max_output_tokens": 16, "max_retries": 0}]}), encoding="utf-8")
        log(f"  suite file {info['suite_bytes'] / 2**20:.1f} MiB, {n} questions, rag")

        def variant(mode: str) -> Callable[[int], float]:
            def call(rep: int) -> float:
                before = fake.stats()["chat"]
                got = child(mode, run_file, folder / f"{mode}-{rep}.jsonl")
                sent = fake.stats()["chat"] - before
                if sent != n:
                    raise RuntimeError(f"{mode} sent {sent} requests for {n} questions")
                info["runs"][mode].append(got)
                return float(got["peak_rss_mib"])
            return call

        samples = alternate({"ctxeval": variant("ctxeval"), "bare": variant("bare")}, sizes.heavy_reps, warmup=False,
                            log=log)
    base = sorted(r["baseline_rss_mib"] for r in info["runs"]["ctxeval"])[len(info["runs"]["ctxeval"]) // 2]
    cond = (f"suite of ~{tokens:,} tokens ({info['suite_bytes'] / 2**20:.1f} MiB JSON), {n} questions, rag (BM25, "
            f"top 5), concurrency {conc}, fake server {sizes.latency_ms:g} ms; fresh process per run, "
            f"{base:.0f} MiB after imports; median of {sizes.heavy_reps} alternating reps")
    seconds = {mode: [r["seconds"] for r in runs] for mode, runs in info["runs"].items()}
    return [Row(bench=NAME, what="Peak memory of a run (RSS)", conditions=cond,
                ctxeval=Figure("ctxeval run (CLI path)", "MiB", samples["ctxeval"], higher_is_better=False),
                reference=Figure("same imports + suite + bare httpx requests", "MiB", samples["bare"],
                                 higher_is_better=False),
                extra={"samples": samples, **info}),
            Row(bench=NAME, what="Wall time of that rag run over the large corpus", conditions=cond,
                ctxeval=Figure("ctxeval run (CLI path), index build included", "s", seconds["ctxeval"],
                               higher_is_better=False),
                reference=Figure("bare httpx requests of the same size", "s", seconds["bare"],
                                 higher_is_better=False))]
