"""``python -m bench.memory_child MODE RUN_FILE OUT WORKDIR``: one run of the memory benchmark in a fresh
process, in ``WORKDIR`` (where an index cache from an earlier run may be); prints ``BENCH_MEMORY={...}``
with this process's peak RSS and the run's seconds, timed from after the imports.

``ctxeval``: ``ctxeval run RUN_FILE --out OUT`` as the command line does it (``app.cli.run.run_file``,
console to /dev/null); it keeps its index and corpus token counts in ``WORKDIR/.ctxeval/indexes``.
``bare``: the reference, the least a rag run must do, written directly against the same libraries:
load the suite and the tokenizer, tokenize the corpus in one pass, cut it into windows of 256 tokens,
index them with ``bm25s``, count the whole context once (what every case reports as its context
length), then for each question retrieve the top 5 windows with ``bm25s`` and send them with the
question from a bare asyncio + httpx loop at the same concurrency. Its index, windows and count are
saved in ``WORKDIR/reference`` and loaded from there when present, like ctxeval's cache.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bench.common import peak_rss_mib, rss_mib

WINDOW, STEP, K = 256, 224, 5


def bare(run_file: Path, workdir: Path) -> float:
    import bm25s

    from app.cli.runfile import load_run_file, load_suite_for
    from bench.engine import endpoint, request_bodies, run_bare
    from evals import prompts
    from evals.tokens import local_tokenizer

    start = time.perf_counter()
    run, base = load_run_file(run_file)
    suite = load_suite_for(run, base)
    ep = endpoint(run.endpoints[0].base_url, run.endpoints[0].concurrency)
    tok = local_tokenizer("cl100k")
    enc = tok._enc  # type: ignore[attr-defined]
    saved = workdir / "reference"
    if (saved / "windows.json").is_file():
        model = bm25s.BM25.load(str(saved / "bm25"), show_progress=False, verbosity=0)
        windows, corpus_tokens = json.loads((saved / "windows.json").read_text(encoding="utf-8"))
    else:
        windows = []
        for ids in enc.encode_ordinary_batch([d.text for d in suite.documents]):  # one tokenizer pass
            windows += [enc.decode(ids[i:i + WINDOW]) for i in range(0, max(len(ids) - WINDOW + STEP, 1), STEP)]
        model = bm25s.BM25()
        model.index(bm25s.tokenize(windows, stopwords="en", show_progress=False), show_progress=False)
        corpus_tokens = len(enc.encode_ordinary(prompts.render_documents(suite.documents)))
        model.save(str(saved / "bm25"), show_progress=False)
        (saved / "windows.json").write_text(json.dumps([windows, corpus_tokens]), encoding="utf-8")
    assert corpus_tokens > 0
    messages = []
    for q in suite.questions:
        hits, _ = model.retrieve(bm25s.tokenize([q.question], stopwords="en", show_progress=False), k=K,
                                 show_progress=False)
        passages = "\n\n".join(windows[int(i)] for i in hits[0])
        messages.append([{"role": "system", "content": prompts.SYSTEM},
                         {"role": "user", "content": prompts.passages_user(passages, q.question)}])
    bodies = asyncio.run(request_bodies(ep, messages))
    _, answers = asyncio.run(run_bare(bodies, ep.base_url, ep.concurrency))
    if len(answers) != len(suite.questions):
        raise RuntimeError("not every request was answered")
    return time.perf_counter() - start


def ctxeval(path: Path, out: Path) -> float:
    from rich.console import Console

    from app.cli.run import run_file

    start = time.perf_counter()
    with open("/dev/null", "w") as devnull:
        asyncio.run(run_file(path, out, resume=False, console=Console(file=devnull)))
    return time.perf_counter() - start


def main() -> None:
    import os

    mode, run_file, out, workdir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    import bm25s  # noqa: F401

    import app.cli.run  # noqa: F401  (both modes pay the same imports)

    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    baseline = rss_mib()
    seconds = ctxeval(run_file, out) if mode == "ctxeval" else bare(run_file, workdir)
    print("BENCH_MEMORY=" + json.dumps({"peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline,
                                         "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
