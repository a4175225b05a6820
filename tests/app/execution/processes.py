"""``ctxeval serve`` and ``ctxeval worker`` as real subprocesses of a test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for key in [k for k in env if k.startswith("CTXEVAL_") or k == "DATABASE_URL"]:
        del env[key]
    env.update(extra or {})
    return env


def ctxeval(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=_env(env), stdout=out,
                            stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serving(database_url: str, port: int, log: Path, *extra: str,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``ctxeval serve`` until the block ends (the block may kill it first)."""
    proc = ctxeval("serve", "--host", "127.0.0.1", "--port", str(port), "--database-url", database_url, *extra,
                   log=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"ctxeval serve exited with {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"ctxeval serve did not answer:\n{log.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def working(database_url: str, executor_id: str, log: Path, *extra: str,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``ctxeval worker`` until the block ends, once it says it executes."""
    proc = ctxeval("worker", "--database-url", database_url, "--executor-id", executor_id, *extra, log=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while f"worker {executor_id} executing" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ctxeval worker {executor_id} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)
