"""7. Memory and wall time of a rag run over a large suite.

A suite of about 1M tokens with N questions, run with the ``rag`` strategy (BM25 over the whole corpus,
top 5 chunks) against the fast fake server, through ``ctxeval run`` in a fresh process. The reference
(``bench.memory_child``) does the same necessary work in a fresh process with the same imports, written
directly against tiktoken, bm25s and httpx: suite and tokenizer loaded, the corpus tokenized in one
pass, windows indexed, the whole context counted once, top 5 retrieved and sent per question. Both are
measured twice: building their index (an empty working folder), and with the index and counts an
earlier run left on disk (ctxeval's index cache; the reference's saved bm25s index). Peak RSS is each
process's own high-water mark (VmHWM), for the runs that build.
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


def child(mode: str, run_file: Path, out: Path, workdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.memory_child", mode, str(run_file), str(out), str(workdir)]
    with process(cmd, ready_prefix="BENCH_MEMORY=", timeout_s=900) as (proc, line):
        proc.wait(timeout=60)
        return json.loads(line)  # type: ignore[no-any-return]


MODES = {"ctxeval": "ctxeval", "bare": "bare", "ctxeval_cached": "ctxeval", "bare_cached": "bare"}


def run(sizes: Sizes, log: Callable[[str], None] = print) -> list[Row]:
    tokens, n, conc = sizes.memory_corpus_tokens, sizes.memory_questions, sizes.concurrency
    info: dict[str, Any] = {"runs": {name: [] for name in MODES}}
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
        for mode in ("ctxeval", "bare"):  # the runs that leave the index on disk for the cached variants
            child(mode, run_file, folder / f"{mode}-prepare.jsonl", folder / f"{mode}_cached")

        def variant(name: str) -> Callable[[int], float]:
            def call(rep: int) -> float:
                before = fake.stats()["chat"]
                workdir = folder / (f"{name}" if name.endswith("_cached") else f"{name}-{rep}")
                got = child(MODES[name], run_file, folder / f"{name}-{rep}.jsonl", workdir)
                sent = fake.stats()["chat"] - before
                if sent != n:
                    raise RuntimeError(f"{name} sent {sent} requests for {n} questions")
                info["runs"][name].append(got)
                return float(got["peak_rss_mib"])
            return call

        samples = alternate({name: variant(name) for name in MODES}, sizes.heavy_reps, warmup=False, log=log)
    base = sorted(r["baseline_rss_mib"] for r in info["runs"]["ctxeval"])[len(info["runs"]["ctxeval"]) // 2]
    cond = (f"suite of ~{tokens:,} tokens ({info['suite_bytes'] / 2**20:.1f} MiB JSON), {n} questions, rag (BM25, "
            f"top 5), concurrency {conc}, fake server {sizes.latency_ms:g} ms; fresh process per run, "
            f"{base:.0f} MiB after imports; timed from after the imports; median of {sizes.heavy_reps} "
            "alternating reps")
    seconds = {mode: [r["seconds"] for r in runs] for mode, runs in info["runs"].items()}
    reference = ("reference: suite, tokenizer, one tokenizer pass, 256-token windows, bm25s index, context "
                 "counted, bm25s top 5, bare httpx requests")
    return [Row(bench=NAME, what="Peak memory of a rag run (RSS), index built", conditions=cond,
                ctxeval=Figure("ctxeval run (CLI path)", "MiB", samples["ctxeval"], higher_is_better=False),
                reference=Figure(reference, "MiB", samples["bare"], higher_is_better=False),
                extra={"samples": samples, **info}),
            Row(bench=NAME, what="Wall time of a rag run over the large corpus, index built", conditions=cond,
                ctxeval=Figure("ctxeval run (CLI path), empty index cache", "s", seconds["ctxeval"],
                               higher_is_better=False),
                reference=Figure(reference, "s", seconds["bare"], higher_is_better=False)),
            Row(bench=NAME, what="Wall time of that rag run, index from an earlier run", conditions=cond,
                ctxeval=Figure("ctxeval run (CLI path), index and counts from its disk cache", "s",
                               seconds["ctxeval_cached"], higher_is_better=False),
                reference=Figure("the reference, its bm25s index, windows and count loaded from disk", "s",
                                 seconds["bare_cached"], higher_is_better=False))]
