"""``python -m bench.memory_child MODE RUN_FILE OUT``: one run of the memory benchmark in a fresh process;
prints ``BENCH_MEMORY={...}`` with this process's peak RSS.

``ctxeval``: ``ctxeval run RUN_FILE --out OUT`` as the command line does it (``app.cli.run.run_file``,
output to /dev/null). ``bare``: the floor: load the same suite and send one request per question, of
the size a ``rag`` case sends (the question and five 256-token passages of its evidence document),
from a bare asyncio + httpx loop at the same concurrency; answers kept in a list.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bench.common import peak_rss_mib, rss_mib


def bare(run_file: Path) -> float:
    from app.cli.runfile import load_run_file, load_suite_for
    from bench.engine import endpoint, request_bodies, run_bare
    from evals import prompts
    from evals.tokens import local_tokenizer

    run, base = load_run_file(run_file)
    suite = load_suite_for(run, base)
    ep = endpoint(run.endpoints[0].base_url, run.endpoints[0].concurrency)
    tok = local_tokenizer("cl100k")
    docs = suite.document_map()
    messages = []
    for q in suite.questions:
        text = docs[q.evidence[0].doc_id].text if q.evidence else suite.documents[0].text
        passages = tok.decode(tok.encode(text)[:5 * 256])
        messages.append([{"role": "system", "content": prompts.SYSTEM},
                         {"role": "user", "content": prompts.passages_user(passages, q.question)}])
    bodies = asyncio.run(request_bodies(ep, messages))
    seconds, answers = asyncio.run(run_bare(bodies, ep.base_url, ep.concurrency))
    if len(answers) != len(suite.questions):
        raise RuntimeError("not every request was answered")
    return seconds


def ctxeval(path: Path, out: Path) -> float:
    from rich.console import Console

    from app.cli.run import run_file

    start = time.perf_counter()
    with open("/dev/null", "w") as devnull:
        asyncio.run(run_file(path, out, resume=False, console=Console(file=devnull)))
    return time.perf_counter() - start


def main() -> None:
    mode, run_file, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    import app.cli.run  # noqa: F401  (both modes pay the same imports)

    baseline = rss_mib()
    seconds = ctxeval(run_file, out) if mode == "ctxeval" else bare(run_file)
    print("BENCH_MEMORY=" + json.dumps({"peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline,
                                         "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
