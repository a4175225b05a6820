"""What an endpoint can do, found out before a run: window, tokenizer, usage and cache reporting,
streaming, embeddings, tool calling, reasoning output.

Every check fails soft: a check that cannot be made leaves its field unknown (None or False) and writes
a note under its name in ``errors``. :func:`probe` never raises for a fault of the endpoint.

A probe may be pointed at any URL, so it reports little of what comes back: a note holds the error
class, the HTTP status and at most :data:`NOTE_CHARS` characters of the body, with the endpoint's key
and anything shaped like a credential masked; bodies are read up to :data:`PROBE_BODY_BYTES` only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from evals.client import ModelClient, auth_headers, classify_http_error, normalise_usage, read_at_most
from evals.domain import Endpoint
from evals.errors import EndpointError
from evals.redact import excerpt
from evals.tokens import ServerTokenizer, Tokenizer, local_tokenizer

NOTE_CHARS = 200  # of a body, the most a note in ``errors`` repeats
PROBE_BODY_BYTES = 1024 * 1024  # a probe reads no more of any answer

TINY_CHAT = [{"role": "user", "content": "Reply with the single word OK."}]
PROBE_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the documents for a query.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
TOOL_CHAT = [{"role": "user", "content": "Use the search tool to look up the capital of Freedonia."}]


def cache_prompt() -> list[dict[str, Any]]:
    """About 1,200 tokens, identical on every call, so a prefix cache can hit on the second one."""
    lines = [f"Record {i}: the probe writes sentence number {i} here and it carries no information."
             for i in range(80)]
    return [{"role": "system", "content": "\n".join(lines)},
            {"role": "user", "content": "How many records are there? Answer with a number."}]


class ProbeResult(BaseModel):
    """What :func:`probe` found. None means unknown; ``errors`` says why, per check."""

    base_url: str
    model: str = Field(description="the model probed (the endpoint's, or the first listed)")
    reachable: bool = False
    models_listed: bool = False
    served_models: list[str] = Field(default_factory=list)
    context_window: int | None = None
    context_window_source: Literal["models.max_model_len", "props.n_ctx"] | None = None
    training_window: int | None = Field(default=None, description="llama.cpp meta.n_ctx_train")
    tokenize_works: bool = False
    tokenizer: str = Field(default="cl100k", description="server | the endpoint's local tokenizer | cl100k")
    chat_works: bool = False
    chat_usage: bool = False
    chat_latency_s: float | None = None
    served_model_id: str | None = Field(default=None, description="'model' in the chat response")
    system_fingerprint: str | None = None
    reasoning_field: Literal["reasoning", "reasoning_content"] | None = None
    stream_works: bool = False
    stream_usage: bool | None = None
    ttft_s: float | None = None
    cached_tokens_reported: bool | None = Field(
        default=None, description="True: a repeated prompt came back with cached tokens > 0; False: the "
                                  "cached-token field stayed 0; None: usage has no such field")
    cached_tokens: int | None = None
    embeddings_work: bool = False
    embedding_dim: int | None = None
    tool_calls_work: bool | None = None
    errors: dict[str, str] = Field(default_factory=dict)


class _Probe:
    def __init__(self, endpoint: Endpoint, result: ProbeResult, http: httpx.AsyncClient,
                 client: ModelClient) -> None:
        self.ep = endpoint
        self.r = result
        self.http = http
        self.client = client

    async def check(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        except Exception as e:  # a probe reports every failure instead of raising it
            self.r.errors[name] = self.note(e)

    def note(self, e: Exception) -> str:
        """The error class, the status and a short excerpt, with secrets masked."""
        secret = self.ep.api_key.get_secret_value() if self.ep.api_key else None
        kind = e.error_class if isinstance(e, EndpointError) else type(e).__name__
        status = f"HTTP {e.status}: " if isinstance(e, EndpointError) and e.status is not None else ""
        text = str(e)
        if isinstance(e, EndpointError) and e.status is not None:  # the status leads; the body is an excerpt
            text = e.body if e.body is not None else text
        return f"{kind}: {status}{excerpt(text, (secret,), NOTE_CHARS)}"

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON) of a request, reading at most PROBE_BODY_BYTES of the answer."""
        async with self.http.stream(method, path, json=body) as resp:
            raw = await read_at_most(resp, PROBE_BODY_BYTES + 1)
        text = raw[:PROBE_BODY_BYTES].decode("utf-8", "replace")
        if resp.status_code >= 300:
            secret = self.ep.api_key.get_secret_value() if self.ep.api_key else None
            raise classify_http_error(resp.status_code, text, secrets=(secret,))
        if len(raw) > PROBE_BODY_BYTES:
            raise ValueError(f"{path} answered with more than {PROBE_BODY_BYTES:,} bytes")
        try:
            return resp.status_code, json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError(f"{path} did not answer with JSON") from None

    async def get(self, path: str) -> Any:
        return _object((await self.request("GET", path))[1], path)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[Any, float]:
        start = time.perf_counter()
        _, data = await self.request("POST", path, body)
        return _object(data, path), time.perf_counter() - start

    # ------------------------------------------------------------------------------ checks
    async def models(self) -> None:
        try:
            async with self.http.stream("GET", "/v1/models") as resp:
                raw = await read_at_most(resp, PROBE_BODY_BYTES + 1)
        except httpx.TransportError as e:
            raise ConnectionError(f"cannot reach {self.ep.base_url}: {type(e).__name__}") from e
        self.r.reachable = True
        text = raw[:PROBE_BODY_BYTES].decode("utf-8", "replace")
        if resp.status_code >= 300:
            raise classify_http_error(resp.status_code, text,
                                      secrets=(self.ep.api_key.get_secret_value() if self.ep.api_key else None,))
        try:
            listed = _object(json.loads(text), "/v1/models").get("data") or []
        except (ValueError, RecursionError):
            raise ValueError("/v1/models did not answer with a JSON object") from None
        rows = [row for row in (listed if isinstance(listed, list) else []) if isinstance(row, dict)]
        self.r.served_models = [str(row["id"]) for row in rows if row.get("id")]
        self.r.models_listed = True
        row = next((x for x in rows if x.get("id") == self.r.model), rows[0] if rows else {})
        if isinstance(row.get("max_model_len"), int) and row["max_model_len"] > 0:
            self.r.context_window, self.r.context_window_source = row["max_model_len"], "models.max_model_len"
        meta = row.get("meta") or {}
        if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
            self.r.training_window = meta["n_ctx_train"]

    async def props(self) -> None:
        n_ctx = ((await self.get("/props")).get("default_generation_settings") or {}).get("n_ctx")
        if isinstance(n_ctx, int) and n_ctx > 0 and self.r.context_window is None:
            self.r.context_window, self.r.context_window_source = n_ctx, "props.n_ctx"

    async def tokenize(self) -> None:
        data, _ = await self.post("/tokenize", {"model": self.r.model, "prompt": "Hello, world.",
                                                "content": "Hello, world.", "add_special": False})
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not tokens:
            raise ValueError("/tokenize answered without a 'tokens' list")
        self.r.tokenize_works = True

    async def chat(self) -> None:
        data, latency = await self.post("/v1/chat/completions",
                                        self.client.chat_body(TINY_CHAT, max_tokens=64, stream=False))
        message = _first_message(data)
        self.r.chat_works = bool(message.get("content") or message.get("reasoning_content")
                                 or message.get("reasoning"))
        if not self.r.chat_works:
            raise ValueError("the chat answered with no content")
        self.r.chat_latency_s = latency
        self.r.served_model_id = data.get("model")
        self.r.system_fingerprint = data.get("system_fingerprint")
        for field in ("reasoning_content", "reasoning"):
            if message.get(field):
                self.r.reasoning_field = field
        usage = normalise_usage(data.get("usage"), data.get("timings"))
        self.r.chat_usage = usage.prompt_tokens is not None or usage.completion_tokens is not None

    async def stream(self) -> None:
        resp = await self.client.chat(TINY_CHAT, max_tokens=64)
        self.r.stream_works = True
        self.r.ttft_s = resp.ttft_s
        self.r.stream_usage = resp.usage.prompt_tokens is not None or resp.usage.completion_tokens is not None

    async def prompt_cache(self) -> None:
        body = self.client.chat_body(cache_prompt(), max_tokens=8, stream=False)
        await self.client.chat([], body=body)
        second = await self.client.chat([], body=body)
        self.r.cached_tokens = second.usage.cached_tokens
        if second.usage.cached_tokens is not None:
            self.r.cached_tokens_reported = second.usage.cached_tokens > 0

    async def embeddings(self) -> None:
        data, _ = await self.post("/v1/embeddings", {"model": self.ep.embedding_model or self.r.model,
                                                      "input": ["probe"]})
        vector = data["data"][0]["embedding"]
        if not isinstance(vector, list) or not vector:
            raise ValueError("/v1/embeddings answered without a vector")
        self.r.embeddings_work, self.r.embedding_dim = True, len(vector)

    async def tools(self) -> None:
        self.r.tool_calls_work = False
        body = self.client.chat_body(TOOL_CHAT, max_tokens=128, tools=[PROBE_TOOL], stream=False)
        data, _ = await self.post("/v1/chat/completions", body)
        message = _first_message(data)
        self.r.tool_calls_work = bool(message.get("tool_calls"))


def _first_message(data: dict[str, Any]) -> dict[str, Any]:
    """``choices[0].message`` of a chat answer; a wrong shape is an error of the check."""
    choices = data.get("choices") or [{}]
    first = choices[0] if isinstance(choices, list) else None
    message = first.get("message") if isinstance(first, dict) else None
    if message is None and isinstance(first, dict):
        return {}
    if not isinstance(message, dict):
        raise ValueError("the chat answer is not shaped {'choices': [{'message': {...}}]}")
    return message


def _object(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{path} did not answer with a JSON object")
    return data


async def probe(endpoint: Endpoint, *, transport: httpx.AsyncBaseTransport | None = None,
                pick_model: bool = False, timeout_s: float = 60.0) -> ProbeResult:
    """Probe ``endpoint``. ``pick_model`` probes the first model ``/v1/models`` lists instead of
    ``endpoint.model``; ``timeout_s`` caps every request (one retry at most)."""
    ep = endpoint.model_copy(update={"timeout_s": min(endpoint.timeout_s, timeout_s),
                                     "deadline_s": min(endpoint.deadline_s, timeout_s),
                                     "max_retries": min(endpoint.max_retries, 1)})
    result = ProbeResult(base_url=ep.base_url, model=ep.model)
    headers = auth_headers(ep)
    timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
    async with httpx.AsyncClient(base_url=ep.base_url, headers=headers, timeout=timeout,
                                 transport=transport) as http:
        p = _Probe(ep, result, http, ModelClient(ep, transport=transport))
        await p.check("models", p.models)
        if not result.reachable:
            await p.client.aclose()
            return result
        if pick_model and result.served_models:
            result.model = result.served_models[0]
            ep = ep.model_copy(update={"model": result.model})
            await p.client.aclose()
            p = _Probe(ep, result, http, ModelClient(ep, transport=transport))
        try:
            for name, fn in (("props", p.props), ("tokenize", p.tokenize), ("chat", p.chat),
                             ("stream", p.stream), ("prompt_cache", p.prompt_cache),
                             ("embeddings", p.embeddings), ("tools", p.tools)):
                await p.check(name, fn)
        finally:
            await p.client.aclose()
    result.tokenizer = "server" if result.tokenize_works else _local_name(ep.tokenizer)
    return result


def _local_name(setting: str) -> str:
    return "cl100k" if setting.strip().lower() in ("auto", "server", "") else setting


def tokenizer_for(endpoint: Endpoint, result: ProbeResult) -> Tokenizer:
    """The tokenizer a run on ``endpoint`` should count with: the server's own ``/tokenize`` when the
    probe found it working, else the endpoint's local tokenizer (cl100k for ``auto``/``server``)."""
    if result.tokenize_works:
        return ServerTokenizer(endpoint.base_url, endpoint.model, api_key=endpoint.request_key())
    return local_tokenizer(_local_name(endpoint.tokenizer))


def unreachable_reason(result: ProbeResult) -> str | None:
    """None when the server answered at least one OpenAI-compatible check; otherwise one sentence
    that says so, with the likely cause read from the checks' errors (wrong host or port, wrong path,
    missing key, or another kind of server)."""
    if result.models_listed or result.chat_works or result.stream_works or result.embeddings_work:
        return None
    head = f"{result.base_url} is not reachable as an OpenAI-compatible server"
    notes = " ".join(result.errors.values())
    if not result.reachable:
        cause = "nothing answered there: check the host and port, and that the server is running"
    elif "HTTP 404" in notes or "HTTP 405" in notes:
        cause = ("it answers, but not at /v1/models or /v1/chat/completions: the base URL should be the "
                 "server's root (e.g. http://127.0.0.1:8001), without a path such as /api or /v1/chat")
    elif "HTTP 401" in notes or "HTTP 403" in notes:
        cause = "it refuses the requests (HTTP 401/403): the API key is missing or wrong"
    else:
        first = next(iter(result.errors.items()), None)
        cause = f"every check failed, first {first[0]}: {first[1]}" if first else "every check failed"
    return f"{head}: {cause}."
