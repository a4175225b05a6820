"""Running the fake server on 127.0.0.1 at a free port: in a background thread or as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.fakes.state import FakeConfig

ROOT = Path(__file__).resolve().parents[2]
PORT_LINE = "FAKE_SERVER_PORT="


class FakeServer:
    """A handle on a running fake server. ``base_url`` is the server root (what ``Endpoint.base_url``
    takes); ``url`` adds ``/v1`` (what OpenAI SDKs take)."""

    def __init__(self, port: int, process: subprocess.Popen[str] | None = None) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}/v1"
        self.process = process

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with httpx.Client(base_url=self.base_url, timeout=10.0) as c:
            r = c.request(method, path, json=body)
        if r.status_code == 422:
            raise ValueError(f"the fake server refused the config: {r.text}")
        r.raise_for_status()
        return r.json()

    def stats(self) -> dict[str, Any]:
        """``requests``, ``by_path``, ``in_flight``, ``max_in_flight``, ``faults_pending`` and ``log``
        (entries ``{t, path, model, prompt_tokens, fault}``)."""
        return self._call("GET", "/_stats")  # type: ignore[no-any-return]

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat and completion requests received, in order."""
        return self._call("GET", "/_bodies")  # type: ignore[no-any-return]

    def configure(self, **changes: Any) -> FakeConfig:
        """Change the config at runtime; ``faults=[...]`` replaces the pending fault queue."""
        body = json.loads(json.dumps(changes, default=lambda o: o.model_dump(mode="json")))
        return FakeConfig.model_validate(self._call("POST", "/_control", body))

    def reset(self) -> None:
        """Forget stats and the prompt cache."""
        self._call("POST", "/_reset")


def _bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on connections accepted from such a socket; without
    # it every keep-alive request waits ~40 ms (Nagle against delayed ACKs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(app: Any) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="none",
                                         access_log=False))


@contextlib.contextmanager
def run_in_thread(config: FakeConfig | None = None) -> Iterator[FakeServer]:
    """Serve :func:`make_app(config)` from uvicorn in a daemon thread for the duration of the block."""
    from tests.fakes.openai_server import make_app

    sock = _bind()
    server = _server(make_app(config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="fake-openai-server")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the fake server did not start")
        time.sleep(0.005)
    try:
        yield FakeServer(sock.getsockname()[1])
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def run_in_subprocess(config: FakeConfig | None = None, *, port: int = 0,
                      startup_timeout_s: float = 30.0) -> Iterator[FakeServer]:
    """Run ``python -m tests.fakes.openai_server`` for the duration of the block (another process can
    reach it; pass ``port`` to come back on the same port after a restart)."""
    config = config or FakeConfig()
    cmd = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port),
           "--config-json", config.model_dump_json()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            bound = _read_port(proc, startup_timeout_s)
            if bound is None:
                errors.seek(0)
                raise RuntimeError(f"the fake server process did not start: {errors.read()[-2000:]}")
            server = FakeServer(bound, proc)
            _wait_healthy(server, proc, startup_timeout_s)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


def _read_port(proc: subprocess.Popen[str], timeout_s: float) -> int | None:
    assert proc.stdout is not None
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(PORT_LINE):
                return int(line[len(PORT_LINE):])
    return None


def _wait_healthy(server: FakeServer, proc: subprocess.Popen[str], timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)
    raise RuntimeError("the fake server process did not become healthy")


def serve_forever(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
    """Bind, print ``FAKE_SERVER_PORT=<port>`` and serve until SIGTERM/SIGINT."""
    sock = _bind(host, port)
    print(f"{PORT_LINE}{sock.getsockname()[1]}", flush=True)
    _server(app).run(sockets=[sock])
