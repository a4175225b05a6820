"""Errors raised by the ctxeval engine.

The tree::

    CtxevalError                     base of everything the engine raises on purpose
    ├── UserInputError               a suite, spec or config a person must fix (names file/line/field)
    ├── TokenizerError               a tokenizer could not be loaded or asked
    └── EndpointError                a model endpoint call failed; ``error_class`` names the outcome
        ├── ContextOverflowError     the prompt does not fit the server's window (never retried)
        ├── RateLimitError           429 after all retries
        ├── ServerError              5xx (and 408/409) after all retries
        ├── EndpointTimeoutError     read timeout or wall-clock deadline
        ├── EndpointConnectionError  connection refused/reset after all retries
        ├── StreamError              an error event inside a 200 stream, or a stream cut short
        │   └── MalformedResponseError  a 200 body or stream chunk that is not the documented shape
        ├── AnswerTooLongError       the answer passed the engine's size limit; the stream was cut
        └── PermanentError           400/401/402/403/404/413/422 that is not an overflow

Per-case failures never escape the runner: it turns an ``EndpointError`` into a case outcome
(``over_window`` for overflows, ``error`` with ``error_class`` otherwise). Only the web layer maps
errors to HTTP responses.
"""

from __future__ import annotations


class CtxevalError(Exception):
    """Base class of the engine's deliberate errors."""


class UserInputError(CtxevalError):
    """Input a person must fix. The message names the file, line and field where it can."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.source = source
        self.line = line
        self.field = field
        where = []
        if source:
            where.append(source)
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field '{field}'")
        self.detail = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class TokenizerError(CtxevalError):
    """A tokenizer could not be loaded or queried."""


class EndpointError(CtxevalError):
    """A call to a model endpoint failed."""

    error_class = "endpoint_error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ContextOverflowError(EndpointError):
    error_class = "context_overflow"


class RateLimitError(EndpointError):
    error_class = "rate_limited"
    retryable = True


class ServerError(EndpointError):
    error_class = "server_error"
    retryable = True


class EndpointTimeoutError(EndpointError):
    error_class = "timeout"
    retryable = True


class EndpointConnectionError(EndpointError):
    error_class = "connection_error"
    retryable = True


class StreamError(EndpointError):
    error_class = "stream_error"
    retryable = True


class PermanentError(EndpointError):
    error_class = "bad_request"


class MalformedResponseError(StreamError):
    """A 200 answer that is not JSON, or JSON of the wrong shape (``[1, 2]``, ``"choices": "abc"``,
    ``"choices": [null]``, a non-string ``content``, ...). Retried like a stream cut short."""

    error_class = "malformed_response"


class AnswerTooLongError(EndpointError):
    """The answer (content, reasoning and tool-call arguments together) passed ``limit`` characters:
    the stream was cut there. ``partial`` is what arrived up to the limit. Never retried."""

    error_class = "answer_too_long"

    def __init__(self, message: str, *, partial: str = "", partial_reasoning: str = "", limit: int = 0) -> None:
        super().__init__(message)
        self.partial = partial
        self.partial_reasoning = partial_reasoning
        self.limit = limit
