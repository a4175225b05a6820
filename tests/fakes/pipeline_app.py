"""A small real RAG service on 127.0.0.1 for the HTTP contracts: its own bm25s index over the documents
pushed to ``/index``, ``/retrieve`` (ranked chunks with spans) and ``/answer`` (an extractive answer
from its best chunk, with the contexts it used, usage and a cost).

It checks the bearer token when one is configured, and can be told to fail the next N requests with a
status (to exercise retries) or to answer with a body that breaks the contract.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

from tests.fakes.runner import _bind

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class PipelineState:
    token: str | None = None
    fail_next: int = 0
    fail_status: int = 503
    malformed: bool = False
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)  # {"doc_id", "start", "end", "text"}
    index: Any = None
    indexed_suite: str | None = None


def _sentences(doc_id: str, text: str) -> list[dict[str, Any]]:
    out, pos = [], 0
    for part in _SENTENCE.split(text):
        start = text.find(part, pos)
        if part.strip():
            out.append({"doc_id": doc_id, "start": start, "end": start + len(part), "text": part})
        pos = start + len(part)
    return out


def _tokens(texts: list[str]) -> Any:
    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


def make_app(state: PipelineState) -> FastAPI:
    app = FastAPI()

    def check(path: str, body: dict[str, Any], authorization: str | None) -> None:
        state.requests.append((path, body))
        if state.token is not None and authorization != f"Bearer {state.token}":
            raise HTTPException(401, "bad or missing token")
        if state.fail_next > 0:
            state.fail_next -= 1
            raise HTTPException(state.fail_status, "try again")

    def build(documents: list[dict[str, Any]]) -> None:
        state.chunks = [c for d in documents for c in _sentences(d["id"], d["text"])]
        model = bm25s.BM25()
        model.index(_tokens([c["text"] for c in state.chunks]), show_progress=False)
        state.index = model

    def search(question: str, k: int, doc_ids: list[str] | None) -> list[dict[str, Any]]:
        if state.index is None or not state.chunks:
            return []
        q = _tokens([question])[0]
        scores = np.asarray(state.index.get_scores(q)) if q else np.zeros(len(state.chunks))
        allowed = set(doc_ids) if doc_ids is not None else None
        order = [i for i in np.argsort(-scores, kind="stable")
                 if allowed is None or state.chunks[i]["doc_id"] in allowed]
        return [{**state.chunks[i], "score": float(scores[i])} for i in order[:k]]

    @app.post("/index")
    async def index(body: dict[str, Any], authorization: str | None = Header(default=None)) -> Any:
        check("/index", body, authorization)
        build(body["documents"])
        state.indexed_suite = body["suite"]["hash"]
        return {"indexed": len(state.chunks)}

    @app.post("/retrieve")
    async def retrieve(body: dict[str, Any], authorization: str | None = Header(default=None)) -> Any:
        check("/retrieve", body, authorization)
        if state.malformed:
            return JSONResponse({"chunks": [{"doc_id": 3}]})
        return {"chunks": search(body["question"], body["k"], body.get("document_ids"))}

    @app.post("/answer")
    async def answer(body: dict[str, Any], authorization: str | None = Header(default=None)) -> Any:
        check("/answer", body, authorization)
        if body.get("documents"):
            build(body["documents"])
        hits = search(body["question"], 3, body.get("document_ids"))
        best = hits[0]["text"] if hits else ""
        if state.malformed:
            return JSONResponse({"contexts": []})
        return {"answer": best.strip().rstrip("."), "contexts": hits,
                "usage": {"prompt_tokens": 100 + len(best) // 4, "completion_tokens": 12}, "cost": 0.0004}

    return app


@dataclass
class Pipeline:
    url: str
    state: PipelineState

    def paths(self) -> list[str]:
        return [p for p, _ in self.state.requests]


@contextlib.contextmanager
def serve_pipeline(state: PipelineState | None = None) -> Iterator[Pipeline]:
    """The pipeline app from uvicorn in a daemon thread on a free 127.0.0.1 port."""
    state = state or PipelineState()
    sock = _bind()
    server = uvicorn.Server(uvicorn.Config(make_app(state), log_level="warning", lifespan="off", ws="none",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="pipeline-app")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the pipeline app did not start")
        time.sleep(0.005)
    try:
        yield Pipeline(f"http://127.0.0.1:{sock.getsockname()[1]}", state)
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)
        sock.close()
