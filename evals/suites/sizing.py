"""Sizing a haystack to a token length, placing needles at a depth, measuring where they landed.

A generator describes its haystack by a count ``n`` of units (tokens, words, sentences, list items,
key-value pairs), a ``build(n)`` that renders the text for ``n`` units and a cheap, non-decreasing
``estimate(n)`` of its token count (usually prefix sums of per-unit counts, each distinct unit encoded
once). :func:`fit` finds the largest ``n`` whose exact count stays at or under the target: it starts
from the estimate, measures the rendered text exactly, corrects the estimate by the measured ratio and
falls back to bisection, so a 128k-token haystack is encoded a handful of times, not once per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from evals.errors import UserInputError
from evals.tokens import Tokenizer

T = TypeVar("T")

TOLERANCE = 0.02
"""A fitted context is never over its target and never more than this fraction under it."""

_GOOD_ENOUGH = 0.005  # stop probing once this close under the target
_MAX_PROBES = 40


class TokenCounter:
    """Token counts of short strings, each distinct string encoded once."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self._cache.get(text)
        if n is None:
            n = self.tokenizer.count(text) if text else 0
            if len(text) < 512:
                self._cache[text] = n
        return n

    def prefix_sums(self, pieces: Sequence[str]) -> np.ndarray:
        """``out[j]`` = estimated tokens of ``pieces[:j]`` (length ``len(pieces) + 1``)."""
        counts = np.fromiter((self(p) for p in pieces), dtype=np.int64, count=len(pieces))
        return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts)])


@dataclass
class Fitted(Generic[T]):
    n: int
    value: T
    tokens: int


def largest_at_most(f: Callable[[int], float], limit: float, lo: int, hi: int) -> int:
    """Largest ``m`` in [lo, hi] with ``f(m) <= limit`` for a non-decreasing ``f``; ``lo - 1`` if none."""
    if f(lo) > limit:
        return lo - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if f(mid) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _scaled(f: Callable[[int], float], factor: float) -> Callable[[int], float]:
    return lambda m: f(m) * factor


def fit(target: int, build: Callable[[int], T], measure: Callable[[T], int],
        estimate: Callable[[int], float], *, n_max: int, n_min: int = 0, what: str) -> Fitted[T]:
    """The largest ``n`` in [n_min, n_max] whose ``measure(build(n))`` is at most ``target`` tokens.

    Raises :class:`UserInputError` (field ``lengths``) when even ``n_min`` units are too long, or when
    the best size found stays more than :data:`TOLERANCE` under the target (units too coarse).
    """
    probes: dict[int, tuple[T, int]] = {}

    def probe(n: int) -> int:
        if n not in probes:
            value = build(n)
            probes[n] = (value, measure(value))
        return probes[n][1]

    floor_tokens = probe(n_min)
    if floor_tokens > target:
        raise UserInputError(
            f"length {target} is too short for {what}: its smallest context (instruction, question and "
            f"the parts every context must hold) takes {floor_tokens} tokens", field="lengths")
    lo, hi = n_min, n_max + 1  # lo measured at or under the target, hi over it (or past the end)
    scale = 1.0
    n = largest_at_most(estimate, target, n_min, n_max)
    for _ in range(_MAX_PROBES):
        if probes[lo][1] >= target * (1 - _GOOD_ENOUGH) or lo + 1 >= hi:
            break
        if not lo < n < hi:
            n = (lo + hi) // 2
        tokens = probe(n)
        if tokens <= target:
            lo = n
        else:
            hi = n
        est = estimate(n)
        scale = tokens / est if est > 0 else scale
        n = largest_at_most(_scaled(estimate, scale), target, n_min, n_max)
        if n <= lo:  # the corrected estimate points at or below a size already known to fit
            n = lo + 1 if lo + 1 < hi else lo
    value, tokens = probes[lo]
    if lo == n_max and tokens < target * (1 - TOLERANCE):
        raise UserInputError(f"the haystack for {what} is too short to reach {target} tokens "
                             f"(it gives {tokens})", field="lengths")
    if tokens < target * (1 - TOLERANCE):
        raise UserInputError(
            f"cannot size {what} to within {TOLERANCE:.0%} of {target} tokens: the closest fit is "
            f"{tokens} tokens because one haystack unit is too large at this length; use a longer length",
            field="lengths")
    return Fitted(lo, value, tokens)


def depth_percent(tokenizer: Tokenizer, text: str, start: int, total_tokens: int | None = None) -> float:
    """Where a span starting at character ``start`` sits: tokens before it / tokens of ``text`` × 100."""
    total = tokenizer.count(text) if total_tokens is None else total_tokens
    if total == 0:
        return 0.0
    return round(100.0 * tokenizer.count(text[:start]) / total, 2)


# ------------------------------------------------------------------------------- unit haystacks
Span = tuple[int, int]


class UnitHaystack:
    """A haystack made of pieces; piece ``j`` is its unit preceded by its joiner (piece 0 has none).

    ``slots[j]`` says whether a needle may stand just before piece ``j`` (a sentence or line boundary);
    the start and the end are always slots. A needle sits between its neighbours with ``sep`` on the
    side that has a neighbour, so ``"\\n"`` makes it a line of its own and ``" "`` a sentence of a run.
    """

    def __init__(self, pieces: Sequence[str], slots: Sequence[bool], sep: str, counter: TokenCounter) -> None:
        if len(slots) != len(pieces):
            raise ValueError("one slot flag per piece")
        self.pieces = list(pieces)
        self.sep = sep
        self.cum = counter.prefix_sums(self.pieces)
        flags = np.asarray(list(slots) + [True], dtype=bool)
        flags[0] = True
        self._slot_idx = np.flatnonzero(flags)

    def __len__(self) -> int:
        return len(self.pieces)

    def estimate(self, n: int) -> int:
        return int(self.cum[n])

    def _slots_upto(self, n: int) -> np.ndarray:
        idx = self._slot_idx[: int(np.searchsorted(self._slot_idx, n, side="right"))]
        if idx.size == 0 or idx[-1] != n:
            idx = np.append(idx, n)
        return idx

    def place(self, n: int, depths: Sequence[float], needle_tokens: Sequence[int]) -> list[int]:
        """Slot index for each needle (in the given order) so it lands nearest its depth percent."""
        slots = self._slots_upto(n)
        offsets = self.cum[slots]
        total = float(self.cum[n]) + float(sum(needle_tokens))
        order = sorted(range(len(depths)), key=lambda i: depths[i])
        chosen = [0] * len(depths)
        before = 0.0
        floor = 0
        for i in order:
            want = depths[i] / 100.0 * total - before
            k = int(np.searchsorted(offsets, want))
            cands = [c for c in (k - 1, k) if 0 <= c < len(slots)]
            best = min(cands, key=lambda c: (abs(float(offsets[c]) - want), c))
            best = max(best, floor)
            chosen[i] = int(slots[best])
            floor = best
            before += needle_tokens[i]
        return chosen

    def render(self, n: int, needles: Sequence[str], at: Sequence[int]) -> tuple[str, list[Span]]:
        """The text of the first ``n`` pieces with ``needles[i]`` before piece ``at[i]``, and their spans."""
        parts: list[str] = []
        pos = 0

        def add(text: str) -> None:
            nonlocal pos
            parts.append(text)
            pos += len(text)

        def add_pieces(start: int, stop: int) -> None:
            chunk = "".join(self.pieces[start:stop])
            if chunk:
                if start == 0 and pos > 0:  # piece 0 has no joiner of its own
                    add(self.sep)
                add(chunk)

        spans: list[Span] = [(0, 0)] * len(needles)
        cursor = 0
        for i in sorted(range(len(needles)), key=lambda i: (at[i], i)):
            add_pieces(cursor, at[i])
            cursor = max(cursor, at[i])
            if pos > 0:
                add(self.sep)
            spans[i] = (pos, pos + len(needles[i]))
            add(needles[i])
        add_pieces(cursor, n)
        return "".join(parts), spans
