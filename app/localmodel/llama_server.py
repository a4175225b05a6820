"""``python -m app.localmodel.llama_server ARGS``: llama-cpp-python's OpenAI server, reporting usage like llama.cpp.

Takes exactly the options of ``python -m llama_cpp.server`` and runs that server with three additions to
its chat completions, so an evaluation can measure what it needs:

* a stream ends with a usage chunk (``choices: []``, ``usage``) as OpenAI sends for
  ``stream_options.include_usage``; llama-cpp-python alone sends no usage in streams;
* in that chunk, ``usage.prompt_tokens_details.cached_tokens``: prompt tokens reused from the KV cache
  (prefix match or ``--cache`` state) instead of evaluated, and llama.cpp-style ``timings``
  (``prompt_n``, ``cache_n``, ``prompt_ms``, ``predicted_n``, ``predicted_ms`` and the per-second
  rates). Non-streamed answers keep the server's plain usage: its response model drops other fields;
* an error inside a stream (a prompt over ``--n_ctx``, say) becomes an ``error`` event with OpenAI's
  ``context_length_exceeded`` code, where llama-cpp-python alone ends the 200 stream with no data.

With ``CTXEVAL_EXIT_WITH_PARENT=<pid>`` (set by the engine) the server exits when that parent process dies.
Environment variables named like the server's settings (``HOST``, ``PORT``, ``API_KEY``, ``MODEL``, …)
are cleared first: every setting comes from the command line. Runs in its own process; the engine
starts it through :class:`app.localmodel.server.LocalModelServer` and never imports this module.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

_ATTR = "_ctxeval_stats"  # set on the Llama object: the server runs one request at a time per model


class _Stats:
    """What one ``generate`` call did: prompt size, tokens reused, tokens evaluated, output, timing."""

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.evaluated = 0
        self.cached = 0
        self.completion_tokens = 0
        self.start = time.perf_counter()
        self.prompt_done: float | None = None
        self.end: float | None = None

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached},
        }

    def timings(self) -> dict[str, Any]:
        prompt_done = self.prompt_done or self.start
        end = self.end or prompt_done
        prompt_ms = (prompt_done - self.start) * 1000.0
        predicted_ms = (end - prompt_done) * 1000.0
        prompt_n = self.prompt_tokens - self.cached
        return {
            "cache_n": self.cached,
            "prompt_n": prompt_n,
            "prompt_ms": round(prompt_ms, 3),
            "prompt_per_second": round(prompt_n * 1000.0 / prompt_ms, 3) if prompt_ms > 0 else None,
            "predicted_n": self.completion_tokens,
            "predicted_ms": round(predicted_ms, 3),
            "predicted_per_second": (round(self.completion_tokens * 1000.0 / predicted_ms, 3)
                                     if predicted_ms > 0 else None),
        }


def _overflow_event(message: str, n_ctx: int) -> dict[str, Any]:
    return {"error": {
        "message": f"This model's maximum context length is {n_ctx} tokens. {message}",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded",
    }}


def install_usage_reporting() -> None:
    """Wrap ``Llama.eval``, ``Llama.generate`` and ``Llama.create_chat_completion`` (see the module doc)."""
    import llama_cpp
    from llama_cpp import Llama

    orig_eval = Llama.eval
    orig_generate = Llama.generate
    orig_chat = Llama.create_chat_completion

    def eval_(self: Any, tokens: Any) -> Any:
        stats: _Stats | None = getattr(self, _ATTR, None)
        if stats is not None and stats.prompt_done is None:
            stats.evaluated += len(tokens)
        return orig_eval(self, tokens)

    def generate(self: Any, tokens: Any, *args: Any, **kwargs: Any) -> Any:
        prompt = list(tokens)
        stats = _Stats(len(prompt))
        setattr(self, _ATTR, stats)
        inner = orig_generate(self, prompt, *args, **kwargs)
        try:
            try:
                token = next(inner)
            except StopIteration:
                return
            finally:
                stats.prompt_done = time.perf_counter()
                stats.cached = max(0, stats.prompt_tokens - stats.evaluated)
            while True:
                if not llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                    stats.completion_tokens += 1
                stats.end = time.perf_counter()
                sent = yield token
                try:
                    token = inner.send(sent)
                except StopIteration:
                    return
        finally:
            stats.end = stats.end or time.perf_counter()
            inner.close()

    def chat(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("stream"):
            return orig_chat(self, *args, **kwargs)
        return _stream(self, args, kwargs)

    def _stream(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Any]:
        last: Any = {}
        setattr(self, _ATTR, None)
        try:
            for chunk in orig_chat(self, *args, **kwargs):
                last = chunk
                yield chunk
        except ValueError as e:
            if "context window" in str(e) or "context length" in str(e):
                yield _overflow_event(str(e), int(self.n_ctx()))
            else:
                yield {"error": {"message": str(e), "type": "invalid_request_error"}}
            return
        except Exception as e:  # reported to the client inside the stream, as llama.cpp does
            yield {"error": {"message": f"{type(e).__name__}: {e}", "type": "server_error"}}
            return
        stats: _Stats | None = getattr(self, _ATTR, None)
        if stats is not None:
            yield {"id": last.get("id", ""), "object": "chat.completion.chunk",
                   "created": last.get("created", int(time.time())), "model": last.get("model", ""),
                   "choices": [], "usage": stats.usage(), "timings": stats.timings()}

    Llama.eval = eval_  # type: ignore[method-assign]
    Llama.generate = generate  # type: ignore[method-assign]
    Llama.create_chat_completion = chat  # type: ignore[method-assign]


def clear_settings_environment() -> None:
    """Drop environment variables that llama-cpp-python's settings would read over our flags."""
    from llama_cpp.server.settings import ConfigFileSettings, Settings

    names = {n.upper() for n in Settings.model_fields} | {n.upper() for n in ConfigFileSettings.model_fields}
    names |= {"HOST", "PORT", "CONFIG_FILE"}
    for key in list(os.environ):
        if key.upper() in names:
            del os.environ[key]


PARENT_ENV = "CTXEVAL_EXIT_WITH_PARENT"  # a pid: the server exits when that process is gone


def exit_with_parent(environ: Mapping[str, str] = os.environ, *, interval_s: float = 0.5) -> None:
    """When ``CTXEVAL_EXIT_WITH_PARENT`` names our parent, exit as soon as it dies (killed with
    SIGKILL, say, with no chance to stop us): the server is reparented and ``getppid`` changes."""
    raw = environ.get(PARENT_ENV, "")
    if not raw.isdigit():
        return
    parent = int(raw)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main() -> None:
    exit_with_parent()
    os.environ.pop(PARENT_ENV, None)
    clear_settings_environment()
    install_usage_reporting()
    from llama_cpp.server.__main__ import main as server_main

    sys.argv[0] = "python -m app.localmodel.llama_server"
    server_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
