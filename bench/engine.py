"""1. Engine overhead against the limit.

The same N short cases at the same concurrency against the same fast fake server (its own process),
through ctxeval's in-memory runner (``make_spec`` → ``plan_cases`` → ``Engine`` → ``run_all``, results
kept in a list) and through a bare asyncio + httpx loop that sends the very same request bodies,
streamed, and parses the SSE answer (the least any client must do: the limit). Once with a fixed
latency (a fast server: ctxeval should be latency-bound like the loop), once at zero latency (pure
client overhead: cases per second on this machine).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.common import FastFake, Figure, Row, Sizes, alternate, fast_fake, fmt
from bench.data import short_suite
from bench.fakeserver import MODEL
from evals import prompts
from evals.client import ModelClient
from evals.domain import CaseResult, Endpoint, Outcome, StrategySpec, Suite
from evals.retrieval.base import IndexCache
from evals.runner import Engine, make_spec, plan_cases, run_all

NAME = "engine"
STRATEGY = StrategySpec(name="long_context")


def endpoint(base_url: str, concurrency: int, **kw: Any) -> Endpoint:
    """The benchmark endpoint: no retries (a fault must show, not hide), short answers."""
    return Endpoint(name="bench", base_url=base_url, model=MODEL, concurrency=concurrency, max_output_tokens=16,
                    max_retries=0, **kw)


async def run_ctxeval(suite: Suite, ep: Endpoint, strategy: StrategySpec = STRATEGY
                      ) -> tuple[float, list[CaseResult]]:
    """Seconds for a whole in-memory run (spec, plan, engine, every case) and its results."""
    start = time.perf_counter()
    spec = make_spec(suite, [ep], [strategy])
    plans = plan_cases(spec, suite)
    async with Engine(suite=suite, endpoints={ep.name: ep}, spec=spec, cache=None, index_cache=IndexCache()) as eng:
        results = [r async for r in run_all(eng, plans)]
    return time.perf_counter() - start, results


def long_context_messages(suite: Suite) -> list[list[dict[str, Any]]]:
    """The messages ctxeval's ``long_context`` strategy sends for each question (no window set)."""
    out = []
    for q in suite.questions:
        block = prompts.render_documents(suite.context_documents(q))
        out.append([{"role": "system", "content": prompts.SYSTEM},
                    {"role": "user", "content": prompts.long_context_user(block, q.question)}])
    return out


async def request_bodies(ep: Endpoint, messages: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The exact JSON bodies ctxeval's client sends for ``messages``."""
    async with ModelClient(ep) as client:
        return [client.chat_body(m) for m in messages]


async def run_bare(bodies: list[dict[str, Any]], base_url: str, concurrency: int, *, stream: bool = True,
                   keepalive: int | None = 20) -> tuple[float, list[str]]:
    """The limit: the same requests from a bare asyncio + httpx loop at the same concurrency.

    ``keepalive`` is the pool's ``max_keepalive_connections`` (httpx's default is 20; 0 opens a
    connection per request)."""
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=keepalive)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as client:
        slots = asyncio.Semaphore(concurrency)

        async def one(body: dict[str, Any]) -> str:
            async with slots:
                if not stream:
                    r = await client.post("/v1/chat/completions", json={**body, "stream": False})
                    return str(r.json()["choices"][0]["message"]["content"])
                parts: list[str] = []
                async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data: ") and line != "data: [DONE]":
                            for choice in json.loads(line[6:]).get("choices") or []:
                                parts.append(choice["delta"].get("content") or "")
                return "".join(parts)

        answers = await asyncio.gather(*(one(b) for b in bodies))
    return time.perf_counter() - start, list(answers)


async def run_raw(bodies: list[dict[str, Any]], port: int, concurrency: int) -> float:
    """Seconds for the same requests over raw asyncio sockets (keep-alive, no HTTP library): what the
    server and the loopback can take, far above any HTTP client library."""
    payloads = [json.dumps(b).encode() for b in bodies]
    queue = list(reversed(payloads))
    start = time.perf_counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            data = queue.pop()
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json"
                         b"\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data))
            await reader.readuntil(b"\r\n\r\n")
            await reader.readuntil(b"\r\n0\r\n\r\n")
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


BARE = {"bare_pool20": 20, "bare_no_keepalive": 0, "bare_pool64": 64}
BARE_LABEL = {"bare_pool20": "httpx default pool (keep-alive 20)", "bare_no_keepalive": "no keep-alive",
              "bare_pool64": "keep-alive = concurrency"}
# Candidates for the limit. With httpcore 1.0 a pool keeping as many connections alive as requests in flight
# is far slower (its connection scan per request is quadratic): measured and shown, never the limit.
LIMIT_CANDIDATES = ("bare_pool20", "bare_no_keepalive")


def _measure(fake: FastFake, sizes: Sizes, latency_ms: float, log: Callable[[str], None]
             ) -> tuple[dict[str, list[float]], dict[str, Any]]:
    n, conc = sizes.engine_cases, sizes.concurrency
    fake.configure(latency_ms=latency_ms)
    ep = endpoint(fake.base_url, conc)
    bodies_by_rep: dict[int, list[dict[str, Any]]] = {}
    info: dict[str, Any] = {"errors": {}, "server_cpu_s": {}, "wall_s": {}}

    def suite_for(rep: int) -> Suite:
        return short_suite(n, salt=f" r{rep}")

    def bodies_for(rep: int) -> list[dict[str, Any]]:
        if rep not in bodies_by_rep:
            bodies_by_rep.clear()
            bodies_by_rep[rep] = asyncio.run(request_bodies(ep, long_context_messages(suite_for(rep))))
        return bodies_by_rep[rep]

    def counted(name: str, rep: int, call: Callable[[], float]) -> float:
        before = fake.stats()
        seconds = call()
        after = fake.stats()
        if after["chat"] - before["chat"] != n:
            raise RuntimeError(f"{name} sent {after['chat'] - before['chat']} requests for {n} cases")
        if rep >= 0:
            info["server_cpu_s"].setdefault(name, []).append(after["cpu_s"] - before["cpu_s"])
            info["wall_s"].setdefault(name, []).append(seconds)
        return n / seconds

    def ctxeval(rep: int) -> float:
        suite = suite_for(rep)

        def call() -> float:
            seconds, results = asyncio.run(run_ctxeval(suite, ep))
            bad = [r for r in results if r.outcome == Outcome.error]
            if bad:
                info["errors"][f"ctxeval rep {rep}"] = f"{len(bad)} errors, first: {bad[0].error_message}"
            return seconds

        return counted("ctxeval", rep, call)

    def bare(name: str) -> Callable[[int], float]:
        def variant(rep: int) -> float:
            bodies = bodies_for(rep)
            return counted(name, rep, lambda: asyncio.run(run_bare(bodies, fake.base_url, conc,
                                                                   keepalive=BARE[name]))[0])
        return variant

    log(f"  {n} cases at concurrency {conc}, latency {latency_ms:g} ms")
    variants: dict[str, Callable[[int], float]] = {"ctxeval": ctxeval}
    variants.update({name: bare(name) for name in BARE})
    samples = alternate(variants, sizes.reps, log=log)
    raw = [n / asyncio.run(run_raw(bodies_for(0), fake.port, conc)) for _ in range(2)]
    info["raw_socket_per_s"] = max(raw)
    return samples, info


def run(sizes: Sizes, log: Callable[[str], None] = print) -> list[Row]:
    rows = []
    with fast_fake() as fake:
        for latency in (sizes.latency_ms, 0.0):
            samples, info = _measure(fake, sizes, latency, log)
            ideal = sizes.concurrency / (latency / 1000) if latency else None
            best = max(LIMIT_CANDIDATES, key=lambda name: Figure("", "", samples[name]).value or 0.0)
            pool64 = Figure("", "", samples["bare_pool64"]).value
            what = (f"Engine throughput, {latency:g} ms server latency" if latency
                    else "Engine throughput, zero latency (pure overhead)")
            cond = (f"{sizes.engine_cases} long_context cases (~90 prompt tokens each), concurrency "
                    f"{sizes.concurrency}, streamed, fast fake server in its own process"
                    + (f"; ideal {fmt(ideal, 'cases/s')}" if ideal else "")
                    + f"; raw sockets reach {fmt(info['raw_socket_per_s'], 'req/s')}, httpx keeping "
                    f"{sizes.concurrency} connections alive {fmt(pool64, 'req/s')}"
                    + f"; median of {sizes.reps} alternating reps")
            ref = Figure(f"bare asyncio + httpx, same requests ({BARE_LABEL[best]}, the better pool)", "req/s",
                         samples[best])
            row = Row(bench=NAME, what=what, conditions=cond,
                      ctxeval=Figure("ctxeval in-memory runner", "cases/s", samples["ctxeval"]), reference=ref,
                      extra={"latency_ms": latency, "cases": sizes.engine_cases, "concurrency": sizes.concurrency,
                             "ideal_per_s": ideal, "samples": samples, **info})
            a, b = row.ctxeval, row.reference
            if a and b and a.value and b.value:
                # client-side time per case beyond the bare loop's, at full concurrency
                row.extra["overhead_ms_per_case"] = 1000 * (1 / a.value - 1 / b.value)
            rows.append(row)
    return rows
