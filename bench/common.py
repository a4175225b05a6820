"""What every benchmark shares: its result rows, A/B alternation with medians, the machine, processes.

A benchmark returns :class:`Row` objects. A row compares one ctxeval figure with one reference figure
(the physical limit, a peer tool, or the same thing done without ctxeval) measured in the same run;
``ratio`` is oriented so that higher is better for ctxeval and 1.0 means "as good as the reference".
A row that cannot run carries ``skipped`` (the reason) instead of figures.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One measured quantity: the median of ``samples`` (one per repetition) in ``unit``."""

    label: str  # what produced it: "ctxeval runner", "bare asyncio + httpx", ...
    unit: str  # "cases/s", "s", "ms", "MiB"
    samples: list[float]
    higher_is_better: bool = True
    value: float | None = None  # median of samples unless given
    detail: str = ""  # shown after the value, e.g. "p95 41 ms"

    def __post_init__(self) -> None:
        if self.value is None and self.samples:
            self.value = statistics.median(self.samples)


@dataclass
class Row:
    bench: str  # the benchmark's name (``--only`` selects by it)
    what: str
    conditions: str
    ctxeval: Figure | None = None
    reference: Figure | None = None
    skipped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # further raw numbers for the JSON file

    @property
    def ratio(self) -> float | None:
        """ctxeval relative to the reference, higher is better for ctxeval, 1.0 = equal."""
        a, b = self.ctxeval, self.reference
        if a is None or b is None or a.value is None or b.value is None or not a.value or not b.value:
            return None
        return a.value / b.value if a.higher_is_better else b.value / a.value

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def skipped(bench: str, what: str, conditions: str, reason: str) -> Row:
    return Row(bench=bench, what=what, conditions=conditions, skipped=reason)


# ------------------------------------------------------------------------------------------ measuring
def alternate(variants: dict[str, Callable[[int], float]], reps: int, *, warmup: bool = True,
              log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run every variant ``reps`` times, interleaved (A B, then B A, ...), each call given its repetition
    number; returns each variant's samples. With ``warmup`` every variant runs once first, unrecorded."""
    names = list(variants)
    samples: dict[str, list[float]] = {n: [] for n in names}
    if warmup:
        for n in names:
            variants[n](-1)
    for r in range(reps):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            gc.collect()
            value = variants[n](r)
            samples[n].append(value)
            if log is not None:
                log(f"    rep {r + 1}/{reps} {n}: {value:.4g}")
    return samples


# ------------------------------------------------------------------------------------------ machine
def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and load of this machine."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover
        load = []
    commit = ""
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    return {"cores": os.cpu_count(), "usable_cores": usable, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "cpu": cpu, "python": platform.python_version(), "platform": platform.platform(),
            "load_avg": [round(x, 2) for x in load], "commit": commit}


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------ processes
def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python process: this tree first on the import path."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def process(cmd: list[str], *, ready_prefix: str, timeout_s: float = 60.0,
            env: dict[str, str] | None = None, stdin: bool = False) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``cmd`` and wait for a stdout line starting with ``ready_prefix``; yields the process and the
    rest of that line. The process is terminated (then killed) when the block ends. ``stdin``: a pipe
    to the process's standard input."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env or child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None, text=True)
    try:
        value = wait_line(proc, ready_prefix, timeout_s)
        yield proc, value
    finally:
        stop(proc)


def wait_line(proc: subprocess.Popen[str], prefix: str, timeout_s: float) -> str:
    assert proc.stdout is not None
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            tail = f": {err[-2000:]}" if err else ""
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}{tail}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    raise RuntimeError(f"{proc.args!r} did not print {prefix!r} within {timeout_s:.0f} s")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class FastFake:
    """A handle on a running :mod:`bench.fakeserver` process."""

    def __init__(self, port: int, proc: subprocess.Popen[str]) -> None:
        self.port = port
        self.proc = proc
        self.base_url = f"http://127.0.0.1:{port}"

    def configure(self, **changes: Any) -> None:
        httpx.post(f"{self.base_url}/_config", json=changes, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/_stats", timeout=10).json()  # type: ignore[no-any-return]


@contextlib.contextmanager
def fast_fake(latency_ms: float = 0.0) -> Iterator[FastFake]:
    """A :mod:`bench.fakeserver` in its own process for the duration of the block."""
    cmd = [sys.executable, "-m", "bench.fakeserver", "--latency-ms", str(latency_ms)]
    with process(cmd, ready_prefix="BENCH_FAKE_PORT=") as (proc, port):
        yield FastFake(int(port), proc)


def fmt(value: float | None, unit: str = "") -> str:
    """A number with three significant digits (no exponent for everyday sizes) and its unit."""
    if value is None:
        return "–"
    a = abs(value)
    if a >= 1000:
        text = f"{value:,.0f}"
    elif a >= 100:
        text = f"{value:.0f}"
    elif a >= 10:
        text = f"{value:.1f}"
    elif a >= 1:
        text = f"{value:.2f}"
    elif a == 0:
        text = "0"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


@dataclass
class Sizes:
    """Sizes of one harness run; ``quick`` shrinks them so the whole run fits in minutes on 2 cores.

    ``reps`` repetitions for the fast benchmarks, ``heavy_reps`` for those whose one repetition takes
    many seconds (durable execution, prefix caching on the real model, memory)."""

    quick: bool
    reps: int
    heavy_reps: int
    engine_cases: int
    concurrency: int
    latency_ms: float
    durable_cases: int
    peer_questions: int
    corpus_tokens: int
    retrieval_queries: int
    prefix_context_tokens: int
    prefix_questions: int
    scale_cases: int
    scale_requests: int
    memory_corpus_tokens: int
    memory_questions: int
    workers_cases: int

    @classmethod
    def full(cls) -> Sizes:
        """The sizes the issue names."""
        return cls(quick=False, reps=5, heavy_reps=3, engine_cases=2000, concurrency=64, latency_ms=50.0,
                   durable_cases=500, peer_questions=1000, corpus_tokens=1_000_000, retrieval_queries=200,
                   prefix_context_tokens=2000, prefix_questions=12, scale_cases=100_000, scale_requests=10,
                   memory_corpus_tokens=1_000_000, memory_questions=1000, workers_cases=2000)

    @classmethod
    def quick_sizes(cls) -> Sizes:
        return cls(quick=True, reps=3, heavy_reps=2, engine_cases=500, concurrency=64, latency_ms=50.0,
                   durable_cases=100, peer_questions=200, corpus_tokens=1_000_000, retrieval_queries=100,
                   prefix_context_tokens=400, prefix_questions=8, scale_cases=100_000, scale_requests=6,
                   memory_corpus_tokens=1_000_000, memory_questions=300, workers_cases=500)

    @classmethod
    def tiny(cls) -> Sizes:
        """Seconds, not minutes: what the smoke test runs."""
        return cls(quick=True, reps=1, heavy_reps=1, engine_cases=40, concurrency=8, latency_ms=5.0,
                   durable_cases=4, peer_questions=10, corpus_tokens=20_000, retrieval_queries=5,
                   prefix_context_tokens=120, prefix_questions=2, scale_cases=300, scale_requests=2,
                   memory_corpus_tokens=20_000, memory_questions=20, workers_cases=8)
