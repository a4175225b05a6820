"""Bring your own pipeline over HTTP: ``http_retriever`` and ``http_app``.

``http_retriever``: ctxeval asks the team's retrieval service for the question's chunks
(``POST {url}/retrieve``), builds the prompt from them exactly as ``rag`` does and calls the run's
endpoint, so the team's retrieval is compared with BM25/dense/hybrid and long context under the same
model; recall, MRR and nDCG use the returned document ids and spans.

``http_app``: ctxeval sends the question (and the documents, or only their ids) to the team's whole
RAG or agent app (``POST {url}/answer``) and scores the answer it returns like any other strategy;
the app's ``contexts`` are scored as its retrieval, its latency is measured, and its ``usage`` and
``cost`` count as the case's.

Both can push the suite's documents once per run (``POST {url}/index``, ``push_index: true``) so the
pipeline indexes the same corpus, and both send ``Authorization: Bearer <token>`` when ``token_env``
names a secret the caller supplied (the CLI reads it from that environment variable, the service from
its own environment; it is never stored with the run). Timeouts, retries (429, 5xx, timeouts,
refused connections, with the endpoints' backoff and Retry-After) and the outcome classes are those
of model calls; a response that breaks the contract is ``bad_response``.

The request and response bodies are the pydantic models below; ``contract_schemas()`` gives their
JSON Schemas (also in ``evals/schemas/http_*.schema.json``). See ``docs/extending.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals import registry
from evals.client import backoff_seconds, classify_http_error, retry_after_seconds
from evals.domain import CallRecord, Document, Evidence, RetrievedChunk, Suite, Usage
from evals.errors import (
    EndpointConnectionError,
    EndpointError,
    EndpointTimeoutError,
    PermanentError,
    UserInputError,
)
from evals.retrieval.chunking import Chunk
from evals.strategies.base import CaseContext, EstimateContext, Strategy, StrategyOutput
from evals.strategies.rag import answer_from_chunks


class BadResponseError(PermanentError):
    """The pipeline answered 2xx with a body that breaks the contract."""

    error_class = "bad_response"


# ------------------------------------------------------------------------------------------ contracts
class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a pipeline may say more than the contract asks


class SuiteRef(_Contract):
    """Which corpus a request is about: the suite's name and content hash (a new hash = new documents)."""

    name: str
    hash: str


class ContractDocument(_Contract):
    id: str
    title: str = ""
    text: str


class IndexRequest(_Contract):
    """``POST {url}/index``: the suite's documents, sent once per run before its first question."""

    suite: SuiteRef
    documents: list[ContractDocument]


class RetrieveRequest(_Contract):
    """``POST {url}/retrieve``: rank chunks of the question's documents (``document_ids``: only these
    may be returned; null = any document of the suite)."""

    question: str
    question_id: str
    k: int = Field(ge=1)
    suite: SuiteRef
    document_ids: list[str] | None = None


class ReturnedChunk(_Reply):
    """One chunk a pipeline retrieved. ``start``/``end`` are character offsets in the document's text;
    without them the chunk stands for its whole document in the retrieval metrics."""

    text: str
    doc_id: str
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    score: float | None = None


class RetrieveResponse(_Reply):
    """The chunks, best first (at most ``k`` are used)."""

    chunks: list[ReturnedChunk]


class AnswerRequest(_Contract):
    """``POST {url}/answer``: answer the question from the documents (``documents`` present when the
    strategy sends them, else only ``document_ids`` and the suite reference)."""

    question: str
    question_id: str
    suite: SuiteRef
    document_ids: list[str] | None = None
    documents: list[ContractDocument] | None = None


class AppUsage(_Reply):
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    cached_tokens: int | None = Field(default=None, ge=0)


class AnswerResponse(_Reply):
    """The app's answer, and optionally the contexts it used, its token usage and its cost in USD."""

    answer: str
    contexts: list[ReturnedChunk] | None = None
    usage: AppUsage | None = None
    cost: float | None = Field(default=None, ge=0)


CONTRACTS: dict[str, type[BaseModel]] = {
    "http_index_request": IndexRequest,
    "http_retrieve_request": RetrieveRequest,
    "http_retrieve_response": RetrieveResponse,
    "http_answer_request": AnswerRequest,
    "http_answer_response": AnswerResponse,
}


def contract_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every request and response body of the two contracts."""
    return {name: model.model_json_schema() for name, model in CONTRACTS.items()}


# --------------------------------------------------------------------------------------------- client
class HttpPipelineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the pipeline's base URL, e.g. http://127.0.0.1:9000")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="seconds allowed per request")
    max_retries: int = Field(default=2, ge=0, le=10, description="retries of 429, 5xx, timeouts, refusals")
    token_env: str | None = Field(default=None, description="secret holding a bearer token (the CLI reads "
                                                            "this environment variable); never stored")
    push_index: bool = Field(default=False, description="POST the suite's documents to {url}/index once")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v


def suite_ref(suite: Suite) -> SuiteRef:
    return SuiteRef(name=suite.name, hash=suite.content_hash)


def _documents(docs: list[Document]) -> list[ContractDocument]:
    return [ContractDocument(id=d.id, title=d.title or "", text=d.text) for d in docs]


class PipelineClient:
    """POSTs contract bodies to one pipeline with the model calls' timeout, retry and error rules."""

    def __init__(self, params: HttpPipelineParams, token: str | None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.params = params
        self._token = token
        self._transport = transport
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._rng = random.Random(0)

    def _client(self) -> httpx.AsyncClient:
        loop = id(asyncio.get_running_loop())  # a client is bound to the loop that made it
        if loop not in self._clients:
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            timeout = httpx.Timeout(self.params.timeout_s, connect=min(10.0, self.params.timeout_s))
            self._clients[loop] = httpx.AsyncClient(base_url=self.params.url, headers=headers, timeout=timeout,
                                                    transport=self._transport, follow_redirects=False)
        return self._clients[loop]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for c in clients.values():
            with contextlib.suppress(RuntimeError):  # its loop is gone
                await c.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    async def post(self, path: str, body: BaseModel, reply: type[BaseModel] | None
                   ) -> tuple[BaseModel | None, float, int]:
        """(parsed reply, seconds of the successful request, attempts) of ``POST {url}{path}``."""
        where = f"{self.params.url}{path}"
        attempt = 0
        while True:
            start = time.perf_counter()
            retry_after: float | None = None
            try:
                r = await asyncio.wait_for(self._client().post(path, content=body.model_dump_json(),
                                                               headers={"Content-Type": "application/json"}),
                                           timeout=self.params.timeout_s)
                latency = time.perf_counter() - start
                if r.status_code >= 300:
                    err: EndpointError = classify_http_error(r.status_code, self._scrub(r.text))
                    err = type(err)(f"{where}: {err}", status=r.status_code)
                    retry_after = retry_after_seconds(r.headers)
                else:
                    if reply is None:
                        return None, latency, attempt + 1
                    try:
                        return reply.model_validate_json(r.content), latency, attempt + 1
                    except ValidationError as e:
                        first = e.errors(include_url=False)[0]
                        loc = ".".join(str(x) for x in first["loc"]) or "body"
                        raise BadResponseError(f"{where}: the response breaks the contract at {loc}: "
                                               f"{first['msg']}") from None
            except (TimeoutError, httpx.TimeoutException):
                err = EndpointTimeoutError(f"{where}: no response within {self.params.timeout_s:g} s")
            except httpx.TransportError as e:
                err = EndpointConnectionError(f"{where}: connection failed: {self._scrub(str(e))}")
            if not err.retryable or attempt >= self.params.max_retries:
                raise err
            await asyncio.sleep(backoff_seconds(attempt, retry_after, rng=self._rng))
            attempt += 1


# ----------------------------------------------------------------------------------------- strategies
def _gold(doc_id: str, start: int, end: int, evidence: list[Evidence]) -> bool:
    return any(ev.doc_id == doc_id and (ev.start is None or ev.end is None or (start < ev.end and ev.start < end))
               for ev in evidence)


def returned_chunks(ctx: CaseContext, returned: list[ReturnedChunk]) -> tuple[list[RetrievedChunk], list[Chunk]]:
    """A pipeline's chunks as retrieved chunks (for the metrics) and prompt chunks (for ``rag``'s
    prompt). A chunk without a span covers its whole document."""
    by_id = {d.id: (i, d) for i, d in enumerate(ctx.suite.documents)}
    retrieved: list[RetrievedChunk] = []
    chunks: list[Chunk] = []
    for rank, c in enumerate(returned):
        index, doc = by_id.get(c.doc_id, (-1, None))
        if c.start is not None and c.end is not None and c.end >= c.start:
            start, end = c.start, c.end
        else:
            start, end = 0, len(doc.text) if doc is not None else len(c.text)
        chunk_id = f"{c.doc_id}@{rank}"
        retrieved.append(RetrievedChunk(chunk_id=chunk_id, doc_id=c.doc_id, start=start, end=end,
                                        score=float(c.score) if c.score is not None else float(-rank), rank=rank,
                                        text=c.text, gold=_gold(c.doc_id, start, end, ctx.question.evidence)))
        chunks.append(Chunk(chunk_id=chunk_id, doc_id=c.doc_id, doc_index=index, ordinal=rank, start=start,
                            end=end, text=c.text, tokens=ctx.tokenizer.count(c.text),
                            title=doc.title if doc is not None and doc.title else ""))
    return retrieved, chunks


class _HttpStrategy(Strategy):
    retrieval = True
    Params: ClassVar[type[BaseModel]] = HttpPipelineParams

    def __init__(self, params: BaseModel) -> None:
        super().__init__(params)
        self._client: PipelineClient | None = None
        self._indexed: set[str] = set()
        self._index_lock: asyncio.Lock | None = None

    @property
    def p(self) -> HttpPipelineParams:
        return self.params  # type: ignore[return-value]

    def required_secrets(self) -> list[str]:
        return [self.p.token_env] if self.p.token_env else []

    def client(self, ctx: CaseContext) -> PipelineClient:
        if self._client is None:
            token = None
            if self.p.token_env:
                token = ctx.secrets.get(self.p.token_env)
                if not token:
                    raise UserInputError(f"the token '{self.p.token_env}' of {self.name} was not given "
                                         "(set that environment variable)", field="params.token_env")
            self._client = PipelineClient(self.p, token)
        return self._client

    async def ensure_index(self, ctx: CaseContext) -> None:
        """Push the suite's documents once per suite (per strategy instance, i.e. per run and process)."""
        if not self.p.push_index or ctx.suite.content_hash in self._indexed:
            return
        if self._index_lock is None:
            self._index_lock = asyncio.Lock()
        async with self._index_lock:
            if ctx.suite.content_hash in self._indexed:
                return
            body = IndexRequest(suite=suite_ref(ctx.suite), documents=_documents(ctx.suite.documents))
            await self.client(ctx).post("/index", body, None)
            self._indexed.add(ctx.suite.content_hash)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class HttpRetrieverParams(HttpPipelineParams):
    k: int = Field(default=5, ge=1, le=1000, description="chunks asked for and put in the prompt")


@registry.strategy(order=10, label="HTTP retriever")
class HttpRetriever(_HttpStrategy):
    """Your retrieval service over HTTP; ctxeval builds the prompt from its chunks and calls the model."""

    name = "http_retriever"
    Params = HttpRetrieverParams
    estimate_note = "http_retriever counted as k chunks of the documents' average size"

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        docs = est.suite.context_documents(est.question)
        context = est.context_tokens()
        per_doc = context // max(len(docs), 1)
        return est.frame_tokens() + min(self.params.k * per_doc, context), True  # type: ignore[attr-defined]

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        await self.ensure_index(ctx)
        p: HttpRetrieverParams = self.params  # type: ignore[assignment]
        doc_ids = [d.id for d in ctx.documents] if ctx.question.doc_ids is not None else None
        body = RetrieveRequest(question=ctx.question.question, question_id=ctx.question.id, k=p.k,
                               suite=suite_ref(ctx.suite), document_ids=doc_ids)
        reply, latency, attempts = await self.client(ctx).post("/retrieve", body, RetrieveResponse)
        assert isinstance(reply, RetrieveResponse)
        allowed = set(doc_ids) if doc_ids is not None else None
        kept = [c for c in reply.chunks if allowed is None or c.doc_id in allowed][: p.k]
        retrieved, chunks = returned_chunks(ctx, kept)
        ctx.llm.calls.append(CallRecord(role="retrieve", latency_s=latency, attempts=attempts,
                                        detail={"url": p.url, "chunks": len(reply.chunks)}))
        out = await answer_from_chunks(ctx, chunks, retrieved)
        out.metadata["retrieve_latency_s"] = latency
        return out


class HttpAppParams(HttpPipelineParams):
    send_documents: bool = Field(default=True, description="send the question's documents with it "
                                                           "(off: only their ids, for a pre-indexed app)")


@registry.strategy(order=11, label="HTTP app")
class HttpApp(_HttpStrategy):
    """Your whole RAG or agent app over HTTP: it answers, ctxeval scores and measures it."""

    name = "http_app"
    Params = HttpAppParams
    estimate_note = "http_app's own model calls are not counted unless it reports usage"

    def estimate_tokens(self, est: EstimateContext) -> tuple[int, bool]:
        return 0, True

    async def answer(self, ctx: CaseContext) -> StrategyOutput:
        await self.ensure_index(ctx)
        p: HttpAppParams = self.params  # type: ignore[assignment]
        body = AnswerRequest(question=ctx.question.question, question_id=ctx.question.id,
                             suite=suite_ref(ctx.suite), document_ids=[d.id for d in ctx.documents],
                             documents=_documents(ctx.documents) if p.send_documents else None)
        reply, latency, attempts = await self.client(ctx).post("/answer", body, AnswerResponse)
        assert isinstance(reply, AnswerResponse)
        u = reply.usage
        usage = Usage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                      cached_tokens=u.cached_tokens) if u is not None else Usage()
        ctx.llm.calls.append(CallRecord(role="app", usage=usage, latency_s=latency, ttft_s=latency,
                                        cost_usd=reply.cost, attempts=attempts, detail={"url": p.url}))
        out = StrategyOutput(answer=reply.answer, prompt=[{"role": "user", "content": ctx.question.question}],
                             metadata={"pipeline": p.url})
        if reply.contexts is not None:
            out.retrieved, _ = returned_chunks(ctx, reply.contexts)
            out.metadata["retrieval"] = True
        return out
