"""Chat and embedding calls to any OpenAI-compatible endpoint.

Streaming with time to first token, usage normalised across servers, the retry policy of
openai-python, errors inside a 200 stream, a wall-clock deadline per request and context-overflow
detection in the shapes of OpenAI, vLLM, SGLang, llama.cpp and TGI.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx

from evals.domain import Endpoint, Usage
from evals.errors import (
    ContextOverflowError,
    EndpointConnectionError,
    EndpointError,
    EndpointTimeoutError,
    PermanentError,
    RateLimitError,
    ServerError,
    StreamError,
)

RETRY_STATUS = {408, 409, 429}
OVERFLOW_PATTERNS = re.compile(
    r"maximum context length|longer than the model's context length|exceed\w*[^.]{0,40}context"
    r"|context[_ ]length[_ ]exceeded|tokens \+ `max_new_tokens`|context size|too many tokens"
    r"|prompt is too long|input is too long",
    re.IGNORECASE,
)
LONG_PROMPT_CHARS = 200_000  # a prompt this long pays a long prefill: retry its timeout at most once


@dataclass
class ChatResponse:
    text: str
    reasoning: str
    usage: Usage
    ttft_s: float | None
    content_ttft_s: float | None
    latency_s: float
    finish_reason: str | None
    model: str | None
    system_fingerprint: str | None
    attempts: int = 1
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    raw_usage: dict[str, Any] | None = None


def normalise_usage(usage: dict[str, Any] | None, timings: dict[str, Any] | None = None) -> Usage:
    """Map any server's usage object to :class:`Usage`; cached tokens stay None when unreported."""
    if not usage and not timings:
        return Usage()
    usage = usage or {}
    cached: int | None = None
    details = usage.get("prompt_tokens_details") or {}
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        cached = int(details["cached_tokens"])
    elif usage.get("prompt_cache_hit_tokens") is not None:
        cached = int(usage["prompt_cache_hit_tokens"])
    elif usage.get("cached_tokens") is not None:
        cached = int(usage["cached_tokens"])
    elif timings and timings.get("cache_n") is not None:
        cached = int(timings["cache_n"])
    reasoning = None
    cdetails = usage.get("completion_tokens_details") or {}
    if isinstance(cdetails, dict) and cdetails.get("reasoning_tokens") is not None:
        reasoning = int(cdetails["reasoning_tokens"])
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if prompt is None and timings and timings.get("prompt_n") is not None:
        prompt = int(timings["prompt_n"]) + int(timings.get("cache_n") or 0)
    if completion is None and timings and timings.get("predicted_n") is not None:
        completion = int(timings["predicted_n"])
    return Usage(
        prompt_tokens=int(prompt) if prompt is not None else None,
        completion_tokens=int(completion) if completion is not None else None,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )


def classify_http_error(status: int, body: str) -> EndpointError:
    """Turn a non-2xx response into the engine's error class."""
    message = body
    code: Any = None
    etype: Any = None
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("detail") or body)
            code = err.get("code")
            etype = err.get("type")
        elif isinstance(err, str):
            message = err
    except (ValueError, AttributeError):
        pass
    short = message[:500]
    if status in (400, 413, 422) and (
        code == "context_length_exceeded"
        or etype in ("exceed_context_size_error", "context_length_exceeded")
        or OVERFLOW_PATTERNS.search(message)
    ):
        return ContextOverflowError(f"context overflow (HTTP {status}): {short}", status=status, body=body)
    if status == 429:
        return RateLimitError(f"rate limited (HTTP 429): {short}", status=status, body=body)
    if status >= 500 or status in RETRY_STATUS:
        return ServerError(f"server error (HTTP {status}): {short}", status=status, body=body)
    return PermanentError(f"request refused (HTTP {status}): {short}", status=status, body=body)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, then retry-after (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra:
        try:
            return float(ra)
        except ValueError:
            pass
        try:
            parsed = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError):  # neither seconds nor an HTTP date: ignore it
            return None
        if parsed.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return max(0.0, parsed.timestamp() - time.time())
    return None


def backoff_seconds(attempt: int, retry_after: float | None, *, rng: random.Random) -> float:
    """openai-python's backoff: honour a sane Retry-After, else min(0.5·2ⁿ, 8) with jitter."""
    if retry_after is not None and 0 <= retry_after <= 60:
        return retry_after
    base = min(0.5 * (2**attempt), 8.0)
    return base * (1 - 0.25 * rng.random())


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every client of the process (httpx's default verification: certifi's
    roots): building one costs about 20 ms, and one context serves any number of connections."""
    return httpx.create_ssl_context()


def server_root(base_url: str) -> str:
    """The server's root URL: a base URL given OpenAI-style with a trailing ``/v1`` loses it."""
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def with_answer_prefix(messages: list[dict[str, Any]], prefix: str, mode: str) -> list[dict[str, Any]]:
    """The messages with the answer prefix in the server's form.

    ``assistant``/``continue_final_message``: a final assistant message the server continues (llama.cpp
    continues a trailing assistant message; vLLM and SGLang with ``continue_final_message``);
    ``deepseek``: the same with ``"prefix": true`` (DeepSeek chat prefix completion); ``user``: the prefix
    appended to the last user turn, for servers that can't continue a reply.
    """
    if not prefix:
        return messages
    if mode == "user":
        out = [dict(m) for m in messages]
        for m in reversed(out):
            if m.get("role") == "user":
                m["content"] = f"{m.get('content') or ''}{prefix}"
                break
        return out
    final: dict[str, Any] = {"role": "assistant", "content": prefix}
    if mode == "deepseek":
        final["prefix"] = True
    return [*messages, final]


def completion_prompt(messages: list[dict[str, Any]]) -> str:
    """Messages as one raw prompt (RULER's ``base`` template): their contents joined by blank lines."""
    return "\n\n".join(str(m.get("content") or "") for m in messages)


class _Retry(Exception):
    def __init__(self, error: EndpointError, retry_after: float | None = None) -> None:
        self.error = error
        self.retry_after = retry_after


class ModelClient:
    """Talks to one endpoint. ``transport`` is injectable (``httpx.MockTransport`` in unit tests)."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep, seed: int | None = None) -> None:
        self.endpoint = endpoint
        headers = {"Content-Type": "application/json"}
        if endpoint.api_key is not None and endpoint.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {endpoint.api_key.get_secret_value()}"
        self._client_args: dict[str, Any] = dict(
            base_url=server_root(endpoint.base_url), headers=headers, transport=transport,
            timeout=httpx.Timeout(connect=10.0, read=endpoint.timeout_s, write=60.0, pool=None),
            verify=shared_ssl_context(), limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        # httpcore's pool looks at every one of its connections on each request (liveness poll, expiry,
        # peer name), so one pool of many connections costs work quadratic in them. Instead every request
        # in flight holds a client of its own with a single keep-alive connection, taken from a free list
        # (last returned first, so a warm connection is reused) and given back when the request ends.
        self._free: list[httpx.AsyncClient] = []
        self._clients: list[httpx.AsyncClient] = []
        self._http = self._new_client()  # probe and tokenizer helpers; the first slot's client
        self._free.append(self._http)
        self._sleep = sleep
        self._rng = random.Random(seed)

    def _new_client(self) -> httpx.AsyncClient:
        c = httpx.AsyncClient(**self._client_args)
        self._clients.append(c)
        return c

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[httpx.AsyncClient]:
        c = self._free.pop() if self._free else self._new_client()
        try:
            yield c
        finally:
            self._free.append(c)

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- request bodies
    def prefill_mode(self) -> str:
        """How this endpoint receives an answer prefix (see :func:`with_answer_prefix`)."""
        if self.endpoint.api == "completions":
            return "completions"
        mode = self.endpoint.prefill
        if mode == "auto":
            return "deepseek" if "api.deepseek.com" in self.endpoint.base_url else "user"
        return mode

    def chat_body(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                  tools: list[dict[str, Any]] | None = None, stream: bool = True, answer_prefix: str = "",
                  stop: list[str] | None = None, temperature: float | None = None) -> dict[str, Any]:
        """The request body. An ``answer_prefix`` is sent the endpoint's way (:meth:`prefill_mode`); with
        ``api: completions`` the messages become one raw prompt for ``/v1/completions``."""
        ep = self.endpoint
        mode = self.prefill_mode()
        if mode == "completions":
            body: dict[str, Any] = {"model": ep.model, "prompt": completion_prompt(messages) + answer_prefix,
                                    "stream": stream}
        else:
            body = {"model": ep.model, "messages": with_answer_prefix(messages, answer_prefix, mode),
                    "stream": stream}
            if answer_prefix and mode == "continue_final_message":
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        body[ep.max_tokens_field] = max_tokens or ep.max_output_tokens
        if temperature is not None:
            body["temperature"] = temperature
        elif ep.temperature is not None:
            body["temperature"] = ep.temperature
        if stop:
            body["stop"] = list(stop)
        if ep.seed is not None:
            body["seed"] = ep.seed
        if stream:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = tools
        body.update(ep.extra_body)
        return body

    # ---------------------------------------------------------------- chat
    async def chat(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                   tools: list[dict[str, Any]] | None = None,
                   on_first_token: Callable[[], None] | None = None,
                   body: dict[str, Any] | None = None) -> ChatResponse:
        """One streamed chat completion with retries. Raises an :class:`EndpointError` subclass."""
        if body is None:
            body = self.chat_body(messages, max_tokens=max_tokens, tools=tools)
        prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        attempt = 0
        timeouts = 0
        while True:
            try:
                resp = await asyncio.wait_for(self._stream_once(body, on_first_token),
                                              timeout=self.endpoint.deadline_s)
                resp.attempts = attempt + 1
                return resp
            except TimeoutError:
                err: EndpointError = EndpointTimeoutError(
                    f"no complete answer within the {self.endpoint.deadline_s:.0f} s deadline")
                retry_after = None
            except _Retry as r:
                err, retry_after = r.error, r.retry_after
            if isinstance(err, EndpointTimeoutError):
                timeouts += 1
                if prompt_chars >= LONG_PROMPT_CHARS and timeouts > 1:
                    raise err
            if not err.retryable or attempt >= self.endpoint.max_retries:
                raise err
            await self._sleep(backoff_seconds(attempt, retry_after, rng=self._rng))
            attempt += 1

    async def _stream_once(self, body: dict[str, Any],
                           on_first_token: Callable[[], None] | None) -> ChatResponse:
        start = time.perf_counter()
        path = "/v1/completions" if "prompt" in body and "messages" not in body else "/v1/chat/completions"
        try:
            async with self._slot() as http, http.stream("POST", path, json=body) as r:
                if r.status_code >= 300:
                    text = (await r.aread()).decode("utf-8", "replace")
                    err = classify_http_error(r.status_code, text)
                    should = r.headers.get("x-should-retry")
                    if should == "true" and not isinstance(err, ContextOverflowError):
                        err.retryable = True
                    elif should == "false":
                        err.retryable = False
                    if err.retryable:
                        raise _Retry(err, retry_after_seconds(r.headers))
                    raise err
                ctype = r.headers.get("content-type", "")
                if "text/event-stream" not in ctype:
                    text = (await r.aread()).decode("utf-8", "replace")
                    return self._parse_plain(text, start)
                return await self._parse_stream(r, start, on_first_token)
        except httpx.TimeoutException as e:
            raise _Retry(EndpointTimeoutError(f"timed out: {type(e).__name__}")) from e
        except httpx.TransportError as e:
            if isinstance(e, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
                raise PermanentError(f"request cannot be sent: {type(e).__name__}: {e}") from e
            raise _Retry(EndpointConnectionError(f"connection failed: {type(e).__name__}: {e}")) from e
        except httpx.HTTPError as e:
            raise PermanentError(f"request failed: {type(e).__name__}: {e}") from e

    def _parse_plain(self, text: str, start: float) -> ChatResponse:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise _Retry(StreamError(f"response is not JSON: {text[:200]}")) from e
        if isinstance(data, dict) and "error" in data and not data.get("choices"):
            raise classify_http_error(400, json.dumps(data))
        choice = (data.get("choices") or [{}])[0]
        msg = choice.get("message") or {}
        latency = time.perf_counter() - start
        return ChatResponse(
            text=msg.get("content") or choice.get("text") or "",
            reasoning=msg.get("reasoning_content") or msg.get("reasoning") or "",
            usage=normalise_usage(data.get("usage"), data.get("timings")),
            ttft_s=None, content_ttft_s=None, latency_s=latency,
            finish_reason=choice.get("finish_reason"), model=data.get("model"),
            system_fingerprint=data.get("system_fingerprint"),
            tool_calls=list(msg.get("tool_calls") or []), raw_usage=data.get("usage"),
        )

    async def _parse_stream(self, r: httpx.Response, start: float,
                            on_first_token: Callable[[], None] | None) -> ChatResponse:
        text: list[str] = []
        reasoning: list[str] = []
        usage: dict[str, Any] | None = None
        timings: dict[str, Any] | None = None
        ttft = content_ttft = None
        finish = model = fingerprint = None
        tool_calls: dict[int, dict[str, Any]] = {}
        done = False
        async for line in r.aiter_lines():
            if not line or line.startswith(":"):
                continue
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                # keep reading to the end of the body so the connection goes back to the pool
                done = True
                continue
            if done:
                continue
            try:
                chunk = json.loads(payload)
            except ValueError as e:
                raise _Retry(StreamError(f"malformed stream chunk: {payload[:200]}")) from e
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                err = chunk["error"]
                raw = json.dumps({"error": err}) if isinstance(err, dict) else str(err)
                classified = classify_http_error(400, raw)
                if isinstance(classified, ContextOverflowError):
                    raise classified
                raise _Retry(StreamError(f"error inside the stream: {str(err)[:300]}", body=raw))
            model = chunk.get("model") or model
            fingerprint = chunk.get("system_fingerprint") or fingerprint
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk.get("timings"):
                timings = chunk["timings"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                piece = delta.get("content") if "delta" in choice else choice.get("text")  # completions: text
                rpiece = delta.get("reasoning_content") or delta.get("reasoning")
                now = time.perf_counter() - start
                if (piece or rpiece) and ttft is None:
                    ttft = now
                    if on_first_token is not None:
                        on_first_token()
                if piece:
                    if content_ttft is None:
                        content_ttft = now
                    text.append(piece)
                if rpiece:
                    reasoning.append(rpiece)
                for tc in delta.get("tool_calls") or []:
                    idx = tc.get("index", 0)
                    slot = tool_calls.setdefault(idx, {"id": tc.get("id"), "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                    if tc.get("id"):
                        slot["id"] = tc["id"]
                    fn = tc.get("function") or {}
                    if fn.get("name"):
                        slot["function"]["name"] += fn["name"]
                    if fn.get("arguments"):
                        slot["function"]["arguments"] += fn["arguments"]
                    if ttft is None:
                        ttft = now
                        if on_first_token is not None:
                            on_first_token()
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if not done and finish is None:
            raise _Retry(StreamError("the stream ended before [DONE] and without a finish_reason"))
        return ChatResponse(
            text="".join(text), reasoning="".join(reasoning),
            usage=normalise_usage(usage, timings), ttft_s=ttft, content_ttft_s=content_ttft,
            latency_s=time.perf_counter() - start, finish_reason=finish, model=model,
            system_fingerprint=fingerprint, tool_calls=[tool_calls[i] for i in sorted(tool_calls)],
            raw_usage=usage,
        )

    # ---------------------------------------------------------------- embeddings
    async def embed(self, texts: list[str], *, model: str | None = None) -> tuple[list[list[float]], Usage]:
        """Embeddings for ``texts`` from ``/v1/embeddings`` with the same retry policy as chat."""
        body = {"model": model or self.endpoint.embedding_model or self.endpoint.model, "input": texts}
        attempt = 0
        while True:
            try:
                async with self._slot() as http:
                    r = await asyncio.wait_for(http.post("/v1/embeddings", json=body),
                                               timeout=self.endpoint.deadline_s)
                if r.status_code >= 300:
                    err = classify_http_error(r.status_code, r.text)
                    if not err.retryable:
                        raise err
                    raise _Retry(err, retry_after_seconds(r.headers))
                data = r.json()
                rows = sorted(data.get("data") or [], key=lambda d: d.get("index", 0))
                vectors = [list(map(float, d["embedding"])) for d in rows]
                if len(vectors) != len(texts):
                    raise PermanentError(f"embeddings: asked for {len(texts)}, got {len(vectors)}")
                return vectors, normalise_usage(data.get("usage"))
            except TimeoutError:
                err2: EndpointError = EndpointTimeoutError("embedding request passed its deadline")
                ra = None
            except httpx.TimeoutException:
                err2, ra = EndpointTimeoutError("embedding request timed out"), None
            except httpx.TransportError as e:
                err2, ra = EndpointConnectionError(f"connection failed: {e}"), None
            except _Retry as rr:
                err2, ra = rr.error, rr.retry_after
            except (ValueError, KeyError, TypeError) as e:
                raise PermanentError(f"embeddings: malformed response: {e}") from e
            if not err2.retryable or attempt >= self.endpoint.max_retries:
                raise err2
            await self._sleep(backoff_seconds(attempt, ra, rng=self._rng))
            attempt += 1

    # ---------------------------------------------------------------- raw helpers for probe/tokenize
    async def get_json(self, path: str) -> Any:
        r = await self._http.get(path, timeout=15.0)
        r.raise_for_status()
        return r.json()

    async def post_json(self, path: str, body: dict[str, Any], timeout: float = 60.0) -> Any:
        r = await self._http.post(path, json=body, timeout=timeout)
        r.raise_for_status()
        return r.json()
