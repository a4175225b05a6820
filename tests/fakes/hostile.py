"""A hostile OpenAI-compatible server for the security tests, on 127.0.0.1 in a background thread.

It records the ``Authorization`` header of every request (``seen``) and answers chats the way its
``mode`` says:

* ``ok``: a short valid streamed answer;
* ``echokey`` / ``echokey500``: HTTP 401 / 500 whose error message repeats the Authorization header;
* ``echokeystream``: a 200 stream whose ``error`` event repeats it;
* ``endless``: a 200 stream of content chunks that never ends (until the client hangs up, or 256 MiB);
* ``oneline``: a 200 stream sending one ``data:`` line without a newline, forever;
* ``bigplain``: a 200 JSON body of 64 MiB;
* ``body``: ``body`` as a 200 ``application/json`` answer (malformed shapes);
* ``chunks``: ``chunks`` (JSON values) as the events of a 200 stream, then ``[DONE]``.

``GET /v1/models`` answers a valid list, or the same error as the chat in the ``echokey`` modes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SSE_PIECE = "lorem ipsum dolor sit amet " * 40  # about 1 KiB of content per event


class HostileServer:
    def __init__(self) -> None:
        self.mode = "ok"
        self.body: Any = None
        self.chunks: list[Any] = []
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.sent_bytes = 0
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def keys_seen(self) -> list[str]:
        with self.lock:
            return [auth for _, auth in self.seen if auth]


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _record(self) -> str | None:
            auth = self.headers.get("Authorization")
            with server.lock:
                server.seen.append((self.path, auth))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            return auth

        def _json(self, status: int, value: Any) -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _echo(self, auth: str | None) -> bool:
            if server.mode == "echokey":
                self._json(401, {"error": {"message": f"Incorrect API key provided: {auth}", "type": "auth"}})
            elif server.mode == "echokey500":
                self._json(500, {"error": {"message": f"upstream rejected headers {{'authorization': '{auth}'}}"}})
            else:
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            auth = self._record()
            if self._echo(auth):
                return
            self._json(200, {"object": "list", "data": [{"id": "m", "max_model_len": 4096}]})

        def _stream_start(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()

        def _send(self, data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()
            with server.lock:
                server.sent_bytes += len(data)

        def do_POST(self) -> None:  # noqa: N802
            auth = self._record()
            mode = server.mode
            if self._echo(auth):
                return
            try:
                if mode == "echokeystream":
                    self._stream_start()
                    self._send(b'data: {"error": {"message": "bad header: ' + (auth or "").encode() + b'"}}\n\n')
                    self.close_connection = True
                elif mode == "endless":
                    self._stream_start()
                    event = json.dumps({"choices": [{"index": 0, "delta": {"content": SSE_PIECE}}]})
                    line = f"data: {event}\n\n".encode()
                    while server.sent_bytes < 256 * 1024 * 1024:
                        self._send(line)
                    self.close_connection = True
                elif mode == "oneline":
                    self._stream_start()
                    self._send(b'data: {"choices": [{"delta": {"content": "')
                    while server.sent_bytes < 256 * 1024 * 1024:
                        self._send(b"x" * 65536)
                    self.close_connection = True
                elif mode == "bigplain":
                    content = "y" * (64 * 1024 * 1024)
                    self._json(200, {"choices": [{"message": {"content": content}, "finish_reason": "stop"}]})
                elif mode == "body":
                    self._json(200, server.body)
                elif mode == "chunks":
                    self._stream_start()
                    for chunk in server.chunks:
                        self._send(f"data: {json.dumps(chunk)}\n\n".encode())
                    self._send(b"data: [DONE]\n\n")
                    self.close_connection = True
                else:
                    self._stream_start()
                    for piece in ("The answer", " is 42."):
                        event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self._send(f"data: {json.dumps(event)}\n\n".encode())
                    final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 4}}
                    self._send(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):  # the client cut the stream: expected
                self.close_connection = True

    return Handler


@contextmanager
def hostile_server(mode: str = "ok") -> Iterator[HostileServer]:
    server = HostileServer()
    server.mode = mode
    server.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.httpd.daemon_threads = True
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
