"""A minimal, fast OpenAI-compatible server for the benchmarks.

The test fake (``tests/fakes/openai_server.py``) models real servers' behaviour (an extractive model,
tokenisation, prefix cache, faults) on FastAPI; that work costs more CPU per request than the client
under test spends, so at zero latency it would measure itself. This one is a raw ``asyncio.Protocol``
speaking just enough HTTP/1.1 (keep-alive, Content-Length bodies, chunked responses): every answer is
the same few tokens after a fixed latency, streamed as Server-Sent Events when ``stream`` is true and
as one JSON body otherwise. It runs in a process of its own so it never shares the client's core.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``, ``GET /_stats``
(requests served, CPU seconds used), ``POST /_config`` (``{"latency_ms": .., "answer": ..}``).

``python -m bench.fakeserver [--latency-ms MS] [--port P]`` prints ``BENCH_FAKE_PORT=<port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import time
from typing import Any

MODEL = "bench-model"


class Config:
    def __init__(self, latency_ms: float = 0.0, answer: str = "42", tokens: int = 3) -> None:
        self.latency_s = latency_ms / 1000.0
        self.answer = answer
        self.tokens = tokens
        self.requests = 0
        self.chat = 0

    def pieces(self) -> list[str]:
        """The answer cut into at most ``tokens`` non-empty streamed pieces."""
        n = max(1, min(self.tokens, len(self.answer)))
        step = -(-len(self.answer) // n)
        return [self.answer[i:i + step] for i in range(0, len(self.answer), step)] or [""]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(status: int, ctype: bytes, length: int | None) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"OK")
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\n" % (status, reason, ctype)
    if length is None:
        head += b"transfer-encoding: chunked\r\n"
    else:
        head += b"content-length: %d\r\n" % length
    return head + b"connection: keep-alive\r\n\r\n"


def _json_response(status: int, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    return _head(status, b"application/json", len(body)) + body


class HttpProtocol(asyncio.Protocol):
    def __init__(self, config: Config) -> None:
        self.config = config
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # a reply still waiting for its latency is dropped by _send

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                self._send(_json_response(400, {"error": {"message": "bad request line"}}))
                self.buf = b""
                return
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            self.handle(method, target.split("?", 1)[0], body)

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def handle(self, method: str, path: str, body: bytes) -> None:
        cfg = self.config
        cfg.requests += 1
        if path == "/v1/chat/completions" and method == "POST":
            cfg.chat += 1
            try:
                req = json.loads(body)
            except ValueError:
                self._send(_json_response(400, {"error": {"message": "the body is not JSON"}}))
                return
            reply = self._chat(req, len(body))
            if cfg.latency_s > 0:
                self.loop.call_later(cfg.latency_s, self._send, reply)
            else:
                self._send(reply)
        elif path == "/v1/models":
            self._send(_json_response(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]}))
        elif path == "/health":
            self._send(_json_response(200, {"status": "ok"}))
        elif path == "/_stats":
            self._send(_json_response(200, {"requests": cfg.requests, "chat": cfg.chat,
                                            "cpu_s": time.process_time(), "latency_ms": cfg.latency_s * 1000}))
        elif path == "/_config" and method == "POST":
            changes = json.loads(body or b"{}")
            if "latency_ms" in changes:
                cfg.latency_s = float(changes["latency_ms"]) / 1000.0
            if "answer" in changes:
                cfg.answer = str(changes["answer"])
            if changes.get("reset"):
                cfg.requests = cfg.chat = 0
            self._send(_json_response(200, {"ok": True}))
        else:
            self._send(_json_response(404, {"error": {"message": f"no route {method} {path}"}}))

    def _chat(self, req: dict[str, Any], body_bytes: int) -> bytes:
        cfg = self.config
        model = str(req.get("model") or MODEL)
        pieces = cfg.pieces()
        usage = {"prompt_tokens": max(1, body_bytes // 4), "completion_tokens": len(pieces),
                 "total_tokens": max(1, body_bytes // 4) + len(pieces),
                 "prompt_tokens_details": {"cached_tokens": 0}}
        head = {"id": "chatcmpl-bench", "created": 0, "model": model, "system_fingerprint": "fp_bench"}
        if not req.get("stream"):
            return _json_response(200, {**head, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": cfg.answer}, "logprobs": None,
                 "finish_reason": "stop"}], "usage": usage})
        obj = {**head, "object": "chat.completion.chunk"}
        events = [{**obj, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "finish_reason": None}]}]
        events += [{**obj, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                   for p in pieces]
        events.append({**obj, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (req.get("stream_options") or {}).get("include_usage"):
            events.append({**obj, "choices": [], "usage": usage})
        payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        return _head(200, b"text/event-stream", None) + _chunk(payload) + b"0\r\n\r\n"


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(sock: socket.socket, config: Config) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(config), sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.fakeserver", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--answer", default="42")
    args = p.parse_args(argv)
    sock = bind(args.host, args.port)
    print(f"BENCH_FAKE_PORT={sock.getsockname()[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sock, Config(args.latency_ms, args.answer)))


if __name__ == "__main__":
    main()
