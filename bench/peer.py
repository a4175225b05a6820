"""3. Versus a peer: the same questions through Inspect AI.

Inspect AI lives in an environment of its own, ``bench/.venv-peer`` (made on first use with ``python -m
venv`` and pip from the package index; nothing else is downloaded), and is driven by
:mod:`bench.peer_inspect` with its OpenAI-compatible provider (``openai-api``, chat completions)
pointed at the same fake server, the same
concurrency (``max_connections``), the exact messages ctxeval sends and a ``match()`` scorer. ctxeval
runs the same questions through its runner and writes each result to a JSONL file, as ``ctxeval run``
does (Inspect writes its log too). Both are timed around the evaluation alone, after imports.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, Figure, Row, Sizes, alternate, fast_fake, skipped
from bench.data import short_suite
from bench.engine import endpoint, long_context_messages
from bench.fakeserver import MODEL
from evals.domain import Outcome, StrategySpec, Suite
from evals.retrieval.base import IndexCache
from evals.runner import Engine, make_spec, plan_cases, run_all

NAME = "peer"
PEER_VENV = ROOT / "bench" / ".venv-peer"
PEER_PACKAGES = ["inspect-ai", "openai"]


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def ensure_peer_env(log: Callable[[str], None] = print, *, install: bool = True) -> tuple[Path | None, str]:
    """The peer environment's Python, made on first use; (None, why) when it cannot be had."""
    python = peer_python()
    check = [str(python), "-c", "import inspect_ai, openai; print(inspect_ai.__version__, openai.__version__)"]
    if python.exists():
        done = subprocess.run(check, capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return python, done.stdout.strip()
    if not install:
        return None, "inspect-ai is not installed (bench/.venv-peer is missing)"
    log(f"  creating {PEER_VENV.relative_to(ROOT)} with {' '.join(PEER_PACKAGES)} (once)")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True, capture_output=True,
                       text=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES],
                       check=True, capture_output=True, text=True, timeout=1200)
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or e.stdout or "").strip().splitlines()[-1:] or [str(e)]
        return None, f"inspect-ai could not be installed: {tail[0][:300]}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"inspect-ai could not be installed: {e}"
    done = subprocess.run(check, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return None, f"inspect-ai could not be imported: {(done.stderr.strip().splitlines() or ['?'])[-1][:300]}"
    return python, done.stdout.strip()


async def run_ctxeval_to_file(suite: Suite, base_url: str, concurrency: int, out: Path) -> tuple[float, int]:
    """Seconds for the runner over ``suite`` writing every result as a JSONL line (``ctxeval run``'s
    loop without its progress bar), and the number of correct answers."""
    ep = endpoint(base_url, concurrency)
    start = time.perf_counter()
    spec = make_spec(suite, [ep], [StrategySpec(name="long_context")])
    plans = plan_cases(spec, suite)
    correct = 0
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec, cache=None, index_cache=IndexCache()) as eng:
        with out.open("w", encoding="utf-8") as fh:
            async for result in run_all(eng, plans):
                fh.write(result.model_dump_json() + "\n")
                if result.outcome == Outcome.error:
                    raise RuntimeError(f"ctxeval case failed: {result.error_message}")
                correct += result.scores.get("exact_match") == 1.0
    return time.perf_counter() - start, correct


def run_peer(python: Path, spec_path: Path, timeout_s: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OPENAI_API_KEY="bench-key", BENCH_API_KEY="bench-key", INSPECT_DISPLAY="none", INSPECT_LOG_LEVEL="warning",
               INSPECT_EVAL_LOG_FILE_PATTERN="{task}_{id}", NO_COLOR="1")
    start = time.perf_counter()
    done = subprocess.run([str(python), str(ROOT / "bench" / "peer_inspect.py"), str(spec_path)], env=env,
                          capture_output=True, text=True, timeout=timeout_s, cwd=spec_path.parent)
    process_s = time.perf_counter() - start
    line = next((x for x in done.stdout.splitlines() if x.startswith("PEER_RESULT=")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"Inspect AI failed ({done.returncode}): {(done.stderr or done.stdout)[-1500:]}")
    result = json.loads(line[len("PEER_RESULT="):])
    result["process_s"] = process_s
    return result  # type: ignore[no-any-return]


def run(sizes: Sizes, log: Callable[[str], None] = print, *, install: bool = True) -> list[Row]:
    n, conc = sizes.peer_questions, sizes.concurrency
    what = "Versus a peer: Inspect AI, same questions"
    cond = (f"{n} questions (long_context messages, ~90 tokens), concurrency {conc} (Inspect max_connections), "
            f"fake server {sizes.latency_ms:g} ms; ctxeval runner + JSONL results vs Inspect eval() (openai-api "
            f"provider) with generate() + match() and its log; timed after imports; median of {sizes.reps} alternating reps")
    python, version = ensure_peer_env(log, install=install)
    if python is None:
        return [skipped(NAME, what, cond, f"skipped: {version}")]
    log(f"  Inspect AI {version.split()[0]} (openai {version.split()[-1]}), {n} questions")
    info: dict[str, Any] = {"inspect": [], "ctxeval_correct": [], "versions": version}
    with tempfile.TemporaryDirectory(prefix="ctxeval-bench-peer-") as tmp, fast_fake(sizes.latency_ms) as fake:
        folder = Path(tmp)

        def suite_for(rep: int) -> Suite:
            return short_suite(n, salt=f" p{rep}")

        def ctxeval(rep: int) -> float:
            seconds, correct = asyncio.run(run_ctxeval_to_file(suite_for(rep), fake.base_url, conc,
                                                               folder / f"ctxeval-{rep}.jsonl"))
            info["ctxeval_correct"].append(correct)
            return seconds

        def inspect(rep: int) -> float:
            suite = suite_for(rep)
            spec = {"base_url": f"{fake.base_url}/v1", "model": MODEL, "concurrency": conc, "max_tokens": 16,
                    "samples": [{"id": q.id, "messages": m, "target": q.answers[0]}
                                for q, m in zip(suite.questions, long_context_messages(suite), strict=True)]}
            path = folder / f"inspect-{rep}.json"
            path.write_text(json.dumps(spec), encoding="utf-8")
            before = fake.stats()["chat"]
            result = run_peer(python, path, timeout_s=max(300.0, n * 2.0))
            sent = fake.stats()["chat"] - before
            if sent < n or result.get("status") != "success":
                raise RuntimeError(f"Inspect AI sent {sent} requests for {n} samples: {result}")
            info["inspect"].append(result)
            return float(result["seconds"])

        samples = alternate({"ctxeval": ctxeval, "inspect": inspect}, sizes.reps, log=log)
    return [Row(bench=NAME, what=what, conditions=cond,
                ctxeval=Figure("ctxeval runner, JSONL results", "s", samples["ctxeval"], higher_is_better=False),
                reference=Figure(f"Inspect AI {version.split()[0]}", "s", samples["inspect"], higher_is_better=False),
                extra={"questions": n, "samples": samples, **info})]
