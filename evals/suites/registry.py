"""Suite generators by kind, imported only when asked for.

A generator is ``generate_<kind>(params: dict, tokenizer: Tokenizer) -> Suite``; it validates ``params``
itself and raises ``UserInputError(..., field=...)`` on bad values.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from evals.domain import Suite
from evals.errors import CtxevalError, UserInputError
from evals.tokens import Tokenizer

Generator = Callable[[dict[str, Any], Tokenizer], Suite]

_RULER_NIAH = ("niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery")

_KINDS: dict[str, str] = {
    "niah": "evals.suites.niah:generate_niah",
    **{f"ruler_{k}": f"evals.suites.ruler_niah:generate_ruler_{k}" for k in _RULER_NIAH},
    **{f"ruler_{k}": f"evals.suites.ruler_{k}:generate_ruler_{k}" for k in ("vt", "cwe", "fwe")},
    "lim_kv": "evals.suites.lim_kv:generate_lim_kv",
    "passkey": "evals.suites.passkey:generate_passkey",
    "multihop": "evals.suites.multihop:generate_multihop",
}


def list_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(_KINDS)


def register(kind: str, target: str) -> None:
    """Add (or replace) a kind; ``target`` is ``"package.module:function"``."""
    if ":" not in target:
        raise ValueError(f"generator target '{target}' must look like 'package.module:function'")
    _KINDS[kind] = target


def generator(kind: str) -> Generator:
    """The generator function of ``kind``, imported now."""
    target = _KINDS.get(kind)
    if target is None:
        raise UserInputError(f"unknown suite kind '{kind}'; known kinds: {', '.join(list_kinds())}",
                             field="kind")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise CtxevalError(f"suite kind '{kind}' is not available: cannot import {module_name} ({e})") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise CtxevalError(f"suite kind '{kind}' is not available: {module_name} has no {attr}()")
    return fn  # type: ignore[no-any-return]


def generate(kind: str, params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """Build a suite of ``kind`` from ``params`` (validated by the generator)."""
    return generator(kind)(dict(params), tokenizer)
