"""The bundled real model: SmolLM2-135M served by llama-cpp-python on 127.0.0.1.

The slow tests need the ``local`` extra; they skip without it, except under CI=true where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.localmodel import server as local_model
from app.localmodel.server import (
    INSTALL_HINT,
    LocalModelServer,
    bundled_model_path,
    check_gguf,
    free_port,
    local_endpoint,
    missing_server_modules,
)
from evals.client import ModelClient
from evals.errors import ContextOverflowError, UserInputError
from evals.tokens import ServerTokenizer

ROOT = Path(__file__).resolve().parents[3]
NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
NEEDLES = [("lucky-otter", "4817263", 0.3), ("calm-river", "9052317", 0.7), ("red-kite", "3366128", 0.1)]


def needle_prompt(key: str, value: str, depth: float, repeats: int = 12) -> str:
    """A RULER single-needle question: one key-value sentence at ``depth`` inside ~300 tokens of noise."""
    parts = [NOISE] * repeats
    parts.insert(int(len(parts) * depth), f"The special magic number for {key} is: {value}. ")
    return ("Some special magic numbers are hidden within the following text. Make sure to memorize them.\n"
            f"{''.join(parts)}\nWhat is the special magic number for {key} mentioned in the provided text? "
            f"The special magic number for {key} mentioned in the provided text is")


def local_extra_missing() -> str | None:
    missing = missing_server_modules()
    if importlib.util.find_spec(local_model.BUNDLED_PACKAGE) is None:
        missing.append(local_model.BUNDLED_PACKAGE)
    if missing:
        return f"the 'local' extra is not installed (missing {', '.join(missing)}): {INSTALL_HINT}"
    return None


def require_local_extra() -> None:
    reason = local_extra_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


# ------------------------------------------------------------------------------------ without a model
def test_missing_gguf_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(UserInputError) as info:
        LocalModelServer(missing)
    assert info.value.source == str(missing)
    assert info.value.field == "model"
    assert "not found" in str(info.value)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(UserInputError, match="not a GGUF"):
        check_gguf(fake)
    with pytest.raises(UserInputError, match="not a file"):
        check_gguf(tmp_path)


def test_missing_server_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_model, "SERVER_MODULES", ("llama_cpp", "no_such_module_for_ctxeval"))
    with pytest.raises(UserInputError) as info:
        local_model.require_server()
    assert "no_such_module_for_ctxeval" in str(info.value)
    assert "ctxeval[local]" in str(info.value)


def test_missing_bundled_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_model, "BUNDLED_PACKAGE", "no_such_package_for_ctxeval")
    with pytest.raises(UserInputError, match=r"ctxeval\[local\]"):
        bundled_model_path()


def test_missing_extra_skips_here_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_model, "SERVER_MODULES", ("no_such_module_for_ctxeval",))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"ctxeval\[local\]"):
        require_local_extra()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no_such_module_for_ctxeval"):
        require_local_extra()


def test_cli_serve_reports_a_missing_model_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["model", "serve", "--model", str(tmp_path / "absent.gguf")])
    assert result.exit_code == 2
    assert "absent.gguf" in result.output and "model file not found" in result.output


def test_server_command_and_no_endpoint_before_start(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    server = LocalModelServer(gguf, n_ctx=4096, threads=3)
    assert server.model_path == gguf.resolve()
    command = server.command(gguf, 1234)
    assert command[1:3] == ["-m", "app.localmodel.llama_server"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags["--n_ctx"] == "4096" and flags["--n_threads"] == "3" and flags["--cache"] == "true"
    assert flags["--port"] == "1234" and flags["--model_alias"] == "tiny"
    with pytest.raises(local_model.LocalModelError):
        local_endpoint(server)


# ------------------------------------------------------------------------------------ the real model
@pytest.fixture(scope="module")
def server() -> Iterator[LocalModelServer]:
    require_local_extra()
    with LocalModelServer(n_ctx=8192) as srv:
        yield srv


@pytest.mark.slow
def test_bundled_model_file_ships_in_the_package() -> None:
    require_local_extra()
    path = bundled_model_path()
    assert path.name == local_model.BUNDLED_FILE
    assert check_gguf(path) == path.resolve()
    result = CliRunner().invoke(cli, ["model", "path"])
    assert result.exit_code == 0 and result.output.strip() == str(path)


@pytest.mark.slow
async def test_needle_questions_stream_with_usage_and_timing(server: LocalModelServer) -> None:
    endpoint = local_endpoint(server)
    assert endpoint.context_window == 8192 and endpoint.tokenizer == "server"
    assert endpoint.price_input == 0 and endpoint.price_output == 0 and endpoint.concurrency == 1
    tokenizer = ServerTokenizer(endpoint.base_url, endpoint.model)
    correct = 0
    try:
        async with ModelClient(endpoint) as client:
            for key, value, depth in NEEDLES:
                prompt = needle_prompt(key, value, depth)
                answer = await client.chat([{"role": "user", "content": prompt}], max_tokens=32)
                assert answer.text.strip()
                assert answer.finish_reason in ("stop", "length")
                assert answer.model == endpoint.model
                usage = answer.usage
                assert usage.prompt_tokens is not None and usage.completion_tokens is not None
                assert 0 < usage.completion_tokens <= 32
                assert usage.cached_tokens is not None and 0 <= usage.cached_tokens < usage.prompt_tokens
                assert answer.ttft_s is not None and 0 < answer.ttft_s <= answer.latency_s
                counted = tokenizer.count(prompt)
                # the chat template adds a few dozen tokens around the question
                assert counted <= usage.prompt_tokens <= counted + 64
                correct += value in answer.text
    finally:
        tokenizer.close()
    assert correct >= 2, f"only {correct} of {len(NEEDLES)} needles found"


@pytest.mark.slow
async def test_repeated_prompt_is_served_from_the_prompt_cache(server: LocalModelServer) -> None:
    endpoint = local_endpoint(server)
    messages = [{"role": "user", "content": needle_prompt("blue-heron", "7261534", 0.5, repeats=8)}]
    async with ModelClient(endpoint) as client:
        first = await client.chat(messages, max_tokens=16)
        second = await client.chat(messages, max_tokens=16)
        plain = await client.chat(messages, body=client.chat_body(messages, max_tokens=16, stream=False))
    assert first.usage.prompt_tokens == second.usage.prompt_tokens
    assert second.usage.cached_tokens is not None and first.usage.cached_tokens is not None
    assert second.usage.cached_tokens >= second.usage.prompt_tokens - 1 > first.usage.cached_tokens
    assert second.text == first.text  # temperature 0
    # the streamed usage counts exactly what the server's own non-streamed usage counts
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (
        second.usage.prompt_tokens, second.usage.completion_tokens)
    assert plain.text == second.text


@pytest.mark.slow
def test_stream_ends_with_a_usage_chunk_and_timings(server: LocalModelServer) -> None:
    body = {"model": server.model, "stream": True, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Name a colour."}]}
    events = []
    with httpx.Client(base_url=server.base_url, timeout=60) as http, \
            http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                events.append(json.loads(line[5:]))
    last = events[-1]
    assert last["choices"] == []
    assert 0 < last["usage"]["completion_tokens"] <= 8
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] >= 0
    timings = last["timings"]
    assert timings["prompt_n"] + timings["cache_n"] == last["usage"]["prompt_tokens"]
    assert timings["predicted_n"] == last["usage"]["completion_tokens"]
    assert timings["prompt_ms"] > 0 and timings["predicted_ms"] >= 0


@pytest.mark.slow
async def test_prompt_over_the_window_is_a_context_overflow(server: LocalModelServer) -> None:
    endpoint = local_endpoint(server)
    too_long = "apple banana cherry " * 3000  # ~9,000 tokens against an 8,192-token window
    async with ModelClient(endpoint) as client:
        with pytest.raises(ContextOverflowError, match="maximum context length is 8192"):
            await client.chat([{"role": "user", "content": too_long}], max_tokens=8)
        after = await client.chat([{"role": "user", "content": "Say hi."}], max_tokens=4)
    assert after.usage.completion_tokens


@pytest.mark.slow
def test_server_tokenizer_round_trips_through_extras_tokenize(server: LocalModelServer) -> None:
    tokenizer = ServerTokenizer(server.base_url + "/v1", server.model)
    try:
        text = "The special magic number for red-kite is: 3366128."
        ids = tokenizer.encode(text)
        assert 5 < len(ids) < len(text)
        assert tokenizer.decode(ids) == text
    finally:
        tokenizer.close()


@pytest.mark.slow
def test_context_manager_stops_the_process() -> None:
    require_local_extra()
    srv = LocalModelServer(n_ctx=512, threads=1)
    with srv:
        url = srv.base_url
        assert srv.running and srv.startup_s is not None and srv.startup_s > 0
        assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 200
    assert not srv.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/models", timeout=5)


@pytest.mark.slow
def test_cli_model_serve_runs_until_interrupted() -> None:
    require_local_extra()
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "model", "serve", "--port", str(port),
                             "--n-ctx", "1024", "--threads", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"base URL: http://127.0.0.1:{port}")
        assert lines[1].strip() == f"model: {local_model.BUNDLED_ALIAS}"
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()
        assert models["data"][0]["id"] == local_model.BUNDLED_ALIAS
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)


@pytest.mark.slow
def test_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A parent killed with SIGKILL cannot stop the server; the server notices and exits by itself."""
    require_local_extra()
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from app.localmodel.server import LocalModelServer\n"
        "srv = LocalModelServer(n_ctx=512, threads=1)\n"
        "srv.__enter__()\n"
        "print(srv._proc.pid, srv.base_url, flush=True)\n"
        "time.sleep(600)\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid_text, url = parent.stdout.readline().split()
        assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 200
        parent.kill()
        parent.wait()
        pid = int(pid_text)
        deadline = time.monotonic() + 10  # the watch looks every 0.5 s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the server outlived its parent by 10 s")
    finally:
        if parent.poll() is None:
            parent.kill()



def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it counts as gone)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False
