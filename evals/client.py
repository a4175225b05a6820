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
    AnswerTooLongError,
    ContextOverflowError,
    EndpointConnectionError,
    EndpointError,
    EndpointTimeoutError,
    MalformedResponseError,
    PermanentError,
    RateLimitError,
    ServerError,
    StreamError,
)
from evals.redact import excerpt

RETRY_STATUS = {408, 409, 429}
OVERFLOW_PATTERNS = re.compile(
    r"maximum context length|longer than the model's context length|exceed\w*[^.]{0,40}context"
    r"|context[_ ]length[_ ]exceeded|tokens \+ `max_new_tokens`|context size|too many tokens"
    r"|prompt is too long|input is too long",
    re.IGNORECASE,
)
LONG_PROMPT_CHARS = 200_000  # a prompt this long pays a long prefill: retry its timeout at most once
# Answers are bounded: a server that ignores max_tokens (or never ends its stream) is cut off at
# min(MAX_ANSWER_CHARS, max(max_tokens × ANSWER_CHARS_PER_TOKEN, MIN_ANSWER_CHARS)) characters of
# content, reasoning and tool-call arguments together; the case ends as ``answer_too_long``.
MAX_ANSWER_CHARS = 4 * 1024 * 1024
ANSWER_CHARS_PER_TOKEN = 32
MIN_ANSWER_CHARS = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024  # of a non-2xx body, the most that is read
EMBEDDING_BODY_BYTES = 256 * 1024 * 1024  # an embeddings answer may be large (a batch of vectors), not endless
STREAM_LINE_BYTES = 1024 * 1024  # one event-stream line longer than this (beyond the answer limit) is refused


def answer_limit(max_tokens: int | None, *, cap: int = MAX_ANSWER_CHARS) -> int:
    """The most characters an answer to a request for ``max_tokens`` tokens may have."""
    if not max_tokens or max_tokens <= 0:
        return cap
    return min(cap, max(max_tokens * ANSWER_CHARS_PER_TOKEN, MIN_ANSWER_CHARS))


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    """The ``Authorization`` header for requests to ``endpoint``: its key only while its base_url is the
    one the key was given with (:meth:`Endpoint.request_key`). Every client the engine builds uses this."""
    key = endpoint.request_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


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
    usage = usage if isinstance(usage, dict) else None  # a usage of the wrong shape is unknown usage
    timings = timings if isinstance(timings, dict) else None
    if not usage and not timings:
        return Usage()
    usage = usage or {}
    cached: int | None = None
    details = usage.get("prompt_tokens_details") or {}
    if isinstance(details, dict) and _count(details.get("cached_tokens")) is not None:
        cached = _count(details["cached_tokens"])
    elif _count(usage.get("prompt_cache_hit_tokens")) is not None:
        cached = _count(usage["prompt_cache_hit_tokens"])
    elif _count(usage.get("cached_tokens")) is not None:
        cached = _count(usage["cached_tokens"])
    elif timings and _count(timings.get("cache_n")) is not None:
        cached = _count(timings["cache_n"])
    reasoning = None
    cdetails = usage.get("completion_tokens_details") or {}
    if isinstance(cdetails, dict):
        reasoning = _count(cdetails.get("reasoning_tokens"))
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    if prompt is None and timings and _count(timings.get("prompt_n")) is not None:
        prompt = (_count(timings["prompt_n"]) or 0) + (_count(timings.get("cache_n")) or 0)
    if completion is None and timings:
        completion = _count(timings.get("predicted_n"))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
                 reasoning_tokens=reasoning)


def _count(value: Any) -> int | None:
    """A token count as a server reports it (int, integral float or digit string); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**63 else None
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def classify_http_error(status: int, body: str, *, secrets: tuple[str | None, ...] = ()) -> EndpointError:
    """Turn a non-2xx response into the engine's error class. The message keeps a short excerpt of the
    body with ``secrets`` and anything shaped like a credential masked (:func:`evals.redact.scrub`)."""
    body = body[:ERROR_BODY_BYTES]
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
    except (ValueError, AttributeError, RecursionError):
        pass
    short = excerpt(message, secrets)
    body = excerpt(body, secrets, limit=ERROR_BODY_BYTES)
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
    base = min(0.5 * (2.0**attempt), 8.0)
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


def _text_field(obj: dict[str, Any], name: str) -> str | None:
    """``obj[name]`` as text: "" when absent or null, None when it is not a string (malformed)."""
    value = obj.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def read_at_most(r: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body; the rest is never read (the connection is dropped)."""
    buf = bytearray()
    async for chunk in r.aiter_bytes():
        buf += chunk
        if len(buf) >= limit:
            return bytes(buf[:limit])
    return bytes(buf)


async def _bounded_lines(r: httpx.Response, max_line: int) -> Any:
    """The body's lines (``\n`` or ``\r\n``), decoded as UTF-8; yields None once for a line longer
    than ``max_line`` bytes, so no single line can take unbounded memory."""
    buf = bytearray()
    async for chunk in r.aiter_bytes():
        buf += chunk
        while True:
            cut = buf.find(b"\n")
            if cut < 0:
                break
            line = bytes(buf[:cut])
            del buf[: cut + 1]
            yield line.rstrip(b"\r").decode("utf-8", "replace")
        if len(buf) > max_line:
            yield None
            return
    if buf:
        yield bytes(buf).rstrip(b"\r").decode("utf-8", "replace")


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
                 sleep: Callable[[float], Any] = asyncio.sleep, seed: int | None = None,
                 max_answer_chars: int = MAX_ANSWER_CHARS) -> None:
        self.endpoint = endpoint
        self.max_answer_chars = max_answer_chars
        headers = {"Content-Type": "application/json", **auth_headers(endpoint)}
        self._secrets = (endpoint.api_key.get_secret_value() if endpoint.api_key else None,)
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
        limit = answer_limit(body.get(self.endpoint.max_tokens_field), cap=self.max_answer_chars)
        path = "/v1/completions" if "prompt" in body and "messages" not in body else "/v1/chat/completions"
        try:
            async with self._slot() as http, http.stream("POST", path, json=body) as r:
                if r.status_code >= 300:
                    text = (await read_at_most(r, ERROR_BODY_BYTES)).decode("utf-8", "replace")
                    err = classify_http_error(r.status_code, text, secrets=self._secrets)
                    should = r.headers.get("x-should-retry")
                    if should == "true" and not isinstance(err, ContextOverflowError):
                        err.retryable = True
                    elif should == "false":
                        err.retryable = False
                    if err.retryable:
                        raise _Retry(err, retry_after_seconds(r.headers))
                    raise err
                ctype = r.headers.get("content-type", "")
                try:
                    if "text/event-stream" not in ctype:
                        # JSON escapes can take 6 bytes a character: room for an answer at the limit
                        raw = await read_at_most(r, 8 * limit + ERROR_BODY_BYTES)
                        if len(raw) > 8 * limit + ERROR_BODY_BYTES - 1:
                            raise AnswerTooLongError(
                                f"answer too long: the response body passed {8 * limit + ERROR_BODY_BYTES:,} "
                                f"bytes (limit {limit:,} characters); the response was cut", limit=limit)
                        return self._parse_plain(raw.decode("utf-8", "replace"), start, limit)
                    return await self._parse_stream(r, start, on_first_token, limit)
                except (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError) as e:
                    # any shape the parsers did not foresee is still the server's fault, not ours
                    raise _Retry(MalformedResponseError(
                        f"malformed response: {type(e).__name__}: {excerpt(str(e), self._secrets, 200)}")) from e
        except httpx.TimeoutException as e:
            raise _Retry(EndpointTimeoutError(f"timed out: {type(e).__name__}")) from e
        except httpx.TransportError as e:
            if isinstance(e, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
                raise PermanentError(f"request cannot be sent: {type(e).__name__}: {e}") from e
            raise _Retry(EndpointConnectionError(f"connection failed: {type(e).__name__}: {e}")) from e
        except httpx.HTTPError as e:
            raise PermanentError(f"request failed: {type(e).__name__}: {e}") from e

    def _malformed(self, what: str, value: Any = None) -> _Retry:
        shown = "" if value is None else f": {excerpt(json.dumps(value, default=str)[:400], self._secrets, 200)}"
        return _Retry(MalformedResponseError(f"malformed response: {what}{shown}"))

    def _parse_plain(self, text: str, start: float, limit: int = MAX_ANSWER_CHARS) -> ChatResponse:
        try:
            data = json.loads(text)
        except RecursionError as e:
            raise self._malformed("JSON nested too deeply") from e
        except ValueError as e:
            raise _Retry(MalformedResponseError(
                f"response is not JSON: {excerpt(text[:400], self._secrets, 200)}")) from e
        if not isinstance(data, dict):
            raise self._malformed("the body is not a JSON object", data)
        if "error" in data and not data.get("choices"):
            raise classify_http_error(400, json.dumps(data), secrets=self._secrets)
        choices = data.get("choices")
        if choices is None or choices == []:
            choices = [{}]
        if not isinstance(choices, list):
            raise self._malformed("'choices' is not a list", choices)
        choice = choices[0]
        if not isinstance(choice, dict):
            raise self._malformed("'choices[0]' is not an object", choice)
        msg = choice.get("message") or {}
        if not isinstance(msg, dict):
            raise self._malformed("'choices[0].message' is not an object", msg)
        content = _text_field(msg, "content")
        if content == "":
            content = _text_field(choice, "text")  # /v1/completions answers with choices[0].text
        reasoning = _text_field(msg, "reasoning_content") or _text_field(msg, "reasoning")
        if content is None or reasoning is None:
            raise self._malformed("'content' or 'reasoning' is not a string", msg)
        tool_calls = msg.get("tool_calls") or []
        if not isinstance(tool_calls, list) or not all(isinstance(t, dict) for t in tool_calls):
            raise self._malformed("'tool_calls' is not a list of objects", tool_calls)
        if len(content) + len(reasoning) > limit:
            keep = max(0, limit - len(reasoning[:limit]))
            raise AnswerTooLongError(f"answer too long: {len(content) + len(reasoning):,} characters, over the "
                                     f"limit of {limit:,}; the answer was cut", partial=content[:keep],
                                     partial_reasoning=reasoning[:limit], limit=limit)
        latency = time.perf_counter() - start
        return ChatResponse(
            text=content, reasoning=reasoning,
            usage=normalise_usage(data.get("usage"), data.get("timings")),
            ttft_s=None, content_ttft_s=None, latency_s=latency,
            finish_reason=_str_or_none(choice.get("finish_reason")), model=_str_or_none(data.get("model")),
            system_fingerprint=_str_or_none(data.get("system_fingerprint")),
            tool_calls=list(tool_calls), raw_usage=data.get("usage") if isinstance(data.get("usage"), dict) else None,
        )

    async def _parse_stream(self, r: httpx.Response, start: float,
                            on_first_token: Callable[[], None] | None,
                            limit: int = MAX_ANSWER_CHARS) -> ChatResponse:
        text: list[str] = []
        reasoning: list[str] = []
        size = 0  # characters of content, reasoning and tool-call arguments so far
        usage: dict[str, Any] | None = None
        timings: dict[str, Any] | None = None
        ttft = content_ttft = None
        finish = model = fingerprint = None
        tool_calls: dict[int, dict[str, Any]] = {}
        done = False

        def too_long() -> AnswerTooLongError:
            kept, kept_reasoning = "".join(text), "".join(reasoning)
            return AnswerTooLongError(
                f"answer too long: the stream passed {limit:,} characters and was cut there "
                f"({len(kept):,} of content kept)", partial=kept, partial_reasoning=kept_reasoning, limit=limit)

        async for line in _bounded_lines(r, max(STREAM_LINE_BYTES, 8 * limit)):
            if line is None:  # one line longer than any answer allowed
                raise too_long()
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
            except RecursionError as e:
                raise self._malformed("a stream chunk nested too deeply") from e
            except ValueError as e:
                raise _Retry(MalformedResponseError(
                    f"malformed stream chunk: {excerpt(payload[:400], self._secrets, 200)}")) from e
            if not isinstance(chunk, dict):
                raise self._malformed("a stream chunk is not a JSON object", chunk)
            if chunk.get("error"):
                err = chunk["error"]
                raw = json.dumps({"error": err}) if isinstance(err, dict) else str(err)
                classified = classify_http_error(400, raw, secrets=self._secrets)
                if isinstance(classified, ContextOverflowError):
                    raise classified
                raise _Retry(StreamError(f"error inside the stream: {excerpt(str(err), self._secrets)}",
                                         body=excerpt(raw, self._secrets, ERROR_BODY_BYTES)))
            model = _str_or_none(chunk.get("model")) or model
            fingerprint = _str_or_none(chunk.get("system_fingerprint")) or fingerprint
            if isinstance(chunk.get("usage"), dict) and chunk["usage"]:
                usage = chunk["usage"]
            if isinstance(chunk.get("timings"), dict) and chunk["timings"]:
                timings = chunk["timings"]
            choices = chunk.get("choices") or []
            if not isinstance(choices, list):
                raise self._malformed("'choices' of a stream chunk is not a list", choices)
            for choice in choices:
                if not isinstance(choice, dict):
                    raise self._malformed("a choice of a stream chunk is not an object", choice)
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    raise self._malformed("'delta' is not an object", delta)
                piece = _text_field(delta, "content") if "delta" in choice else _text_field(choice, "text")
                rpiece = _text_field(delta, "reasoning_content") or _text_field(delta, "reasoning")
                if piece is None or rpiece is None:
                    raise self._malformed("'content' or 'reasoning' of a delta is not a string", delta)
                now = time.perf_counter() - start
                if (piece or rpiece) and ttft is None:
                    ttft = now
                    if on_first_token is not None:
                        on_first_token()
                if size + len(piece) + len(rpiece) > limit:
                    room = max(0, limit - size)
                    text.append(piece[:room])
                    reasoning.append(rpiece[:max(0, room - len(piece))])
                    raise too_long()
                size += len(piece) + len(rpiece)
                if piece:
                    if content_ttft is None:
                        content_ttft = now
                    text.append(piece)
                if rpiece:
                    reasoning.append(rpiece)
                calls = delta.get("tool_calls") or []
                if not isinstance(calls, list):
                    raise self._malformed("'tool_calls' of a delta is not a list", calls)
                for tc in calls:
                    if not isinstance(tc, dict):
                        raise self._malformed("a tool call of a delta is not an object", tc)
                    idx = tc.get("index", 0)
                    if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < 1024:
                        raise self._malformed("a tool call's 'index' is not a small integer", idx)
                    slot = tool_calls.setdefault(idx, {"id": tc.get("id"), "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                    if tc.get("id"):
                        slot["id"] = tc["id"]
                    fn = tc.get("function") or {}
                    if not isinstance(fn, dict):
                        raise self._malformed("a tool call's 'function' is not an object", fn)
                    name, args = _text_field(fn, "name"), _text_field(fn, "arguments")
                    if name is None or args is None:
                        raise self._malformed("a tool call's 'name' or 'arguments' is not a string", fn)
                    size += len(name) + len(args)
                    if size > limit:
                        raise too_long()
                    slot["function"]["name"] += name
                    slot["function"]["arguments"] += args
                    if ttft is None:
                        ttft = now
                        if on_first_token is not None:
                            on_first_token()
                if choice.get("finish_reason"):
                    finish = _str_or_none(choice["finish_reason"])
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
                status, headers, raw = await asyncio.wait_for(self._post_bounded("/v1/embeddings", body),
                                                              timeout=self.endpoint.deadline_s)
                if status >= 300:
                    err = classify_http_error(status, raw[:ERROR_BODY_BYTES].decode("utf-8", "replace"),
                                              secrets=self._secrets)
                    if not err.retryable:
                        raise err
                    raise _Retry(err, retry_after_seconds(headers))
                if len(raw) > EMBEDDING_BODY_BYTES:
                    raise MalformedResponseError(f"embeddings: the answer passed {EMBEDDING_BODY_BYTES:,} bytes")
                data = json.loads(raw)
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
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
                raise MalformedResponseError(
                    f"embeddings: malformed response: {type(e).__name__}: {excerpt(str(e), self._secrets, 200)}"
                ) from e
            if not err2.retryable or attempt >= self.endpoint.max_retries:
                raise err2
            await self._sleep(backoff_seconds(attempt, ra, rng=self._rng))
            attempt += 1

    async def _post_bounded(self, path: str, body: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        async with self._slot() as http, http.stream("POST", path, json=body) as r:
            return r.status_code, r.headers, await read_at_most(r, EMBEDDING_BODY_BYTES + 1)

    # ---------------------------------------------------------------- raw helpers for probe/tokenize
    async def get_json(self, path: str) -> Any:
        r = await self._http.get(path, timeout=15.0)
        r.raise_for_status()
        return r.json()

    async def post_json(self, path: str, body: dict[str, Any], timeout: float = 60.0) -> Any:
        r = await self._http.post(path, json=body, timeout=timeout)
        r.raise_for_status()
        return r.json()
