"""Runs the peer benchmark's questions through Inspect AI. Executed by the peer environment's Python
(``bench/.venv-peer``), never imported by ctxeval: it imports nothing from this repository.

Input: a JSON file ``{"base_url", "model", "concurrency", "max_tokens", "samples": [{"id", "messages",
"target"}]}``. Prints one line ``PEER_RESULT={...}`` with the seconds ``eval()`` took, the samples
scored and Inspect's version.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

t_import = time.perf_counter()
import inspect_ai  # noqa: E402
from inspect_ai import Task, eval  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.model import ChatMessageSystem, ChatMessageUser  # noqa: E402
from inspect_ai.scorer import match  # noqa: E402
from inspect_ai.solver import generate  # noqa: E402

import_s = time.perf_counter() - t_import


def messages(raw: list[dict[str, str]]) -> list[object]:
    return [ChatMessageSystem(content=m["content"]) if m["role"] == "system" else ChatMessageUser(content=m["content"])
            for m in raw]


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        spec = json.load(fh)
    samples = [Sample(id=s["id"], input=messages(s["messages"]), target=s["target"]) for s in spec["samples"]]
    task = Task(dataset=samples, solver=generate(), scorer=match())
    with tempfile.TemporaryDirectory(prefix="ctxeval-bench-inspect-") as log_dir:
        start = time.perf_counter()
        logs = eval(task, model=f"openai-api/bench/{spec['model']}", model_base_url=spec["base_url"],
                    max_connections=spec["concurrency"], max_tokens=spec["max_tokens"], temperature=0.0,
                    log_dir=log_dir, display="none", score_display=False, max_retries=0)
        seconds = time.perf_counter() - start
        log = logs[0]  # read before the log folder goes away
        scored = len(log.samples) if log.samples is not None else None
        result = {"seconds": seconds, "import_s": import_s, "status": log.status, "samples": scored,
                  "error": str(log.error.message)[:500] if log.error else None,
                  "version": inspect_ai.__version__}
    print("PEER_RESULT=" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
