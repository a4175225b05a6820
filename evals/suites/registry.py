"""Suite generators by kind, through the component registry (``evals.registry``).

A generator registers with ``@evals.registry.generator(kind, params=Model)`` and is
``generate_<kind>(params: dict, tokenizer: Tokenizer) -> Suite``; it validates ``params`` itself
(with the model it registered) and raises ``UserInputError(..., field=...)`` on bad values. The
built-in generators' modules are imported only when their kind is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evals import registry
from evals.domain import Suite
from evals.errors import UserInputError
from evals.tokens import Tokenizer

Generator = Callable[[dict[str, Any], Tokenizer], Suite]


def list_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(registry.names("generator"))


def generator(kind: str) -> Generator:
    """The generator function of ``kind``, imported now."""
    if ":" in kind:
        raise UserInputError(f"unknown suite kind '{kind}'; known kinds: {', '.join(list_kinds())}",
                             field="kind")
    try:
        comp = registry.get("generator", kind, field_name="kind")
    except UserInputError:
        raise UserInputError(f"unknown suite kind '{kind}'; known kinds: {', '.join(list_kinds())}",
                             field="kind") from None
    return comp.target  # type: ignore[no-any-return]


def generate(kind: str, params: dict[str, Any], tokenizer: Tokenizer) -> Suite:
    """Build a suite of ``kind`` from ``params`` (validated by the generator)."""
    return generator(kind)(dict(params), tokenizer)
