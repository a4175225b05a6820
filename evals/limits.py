"""Limits on input, in one place: the domain models, the service's database columns and its API
validate against the same numbers.

Parsed JSON and YAML go through :func:`check_value`, which refuses what the databases or the engine
cannot hold: text that is not valid Unicode (a lone surrogate such as ``"\\ud800"``) or holds a NUL
character (PostgreSQL cannot store one; SQLite would, so both refuse it alike), integers beyond
64 bits, NaN and infinities, and nesting deeper than :data:`MAX_DEPTH`. :func:`loads_json` and
:func:`load_yaml` parse with those checks, and YAML aliases are bounded by the size of the document
they expand to (a "billion laughs" file is refused before it is built). Every refusal is a
:class:`LimitError`, a :class:`~evals.errors.UserInputError` naming the field (and the character
position for a bad string).
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from evals.errors import UserInputError

# --------------------------------------------------------------------------- lengths (columns as well)
ENDPOINT_NAME_MAX = 100  # endpoint.name, case.endpoint
SUITE_NAME_MAX = 200  # suite.name
ITEM_ID_MAX = 256  # document and question ids
STRATEGY_NAME_MAX = 100  # a registered strategy's name (case.strategy_name)
STRATEGY_KEY_MAX = 200  # a strategy's label, or its name with parameters (case.strategy)
RUN_NAME_MAX = 200  # run.name
ROUTE_MAX = 100  # case.route
ERROR_CLASS_MAX = 100  # case.error_class
TOKEN_NAME_MAX = 100  # api_token.name

# ----------------------------------------------------------------------------------- values, structure
MAX_DEPTH = 64  # nesting of lists and mappings in any JSON body, suite file or record
MAX_INT = 2**63 - 1  # integers must fit a signed 64-bit column
MAX_INT_DIGITS = 20  # longer integer literals are refused before conversion
YAML_MAX_EXPANSION = 4  # a YAML file with aliases may expand to at most this × its own size …
YAML_MIN_BUDGET = 1_000_000  # … or this many characters and nodes, whichever is larger


class LimitError(UserInputError):
    """Input over one of the limits above (or not valid Unicode)."""


def unicode_problem(text: str) -> int | None:
    """The index of the first lone surrogate in ``text``, or None when it is valid Unicode."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return int(e.start)
    return None


def check_text(text: str, path: str = "", *, source: str | None = None, line: int | None = None) -> None:
    nul = text.find("\x00")
    if nul >= 0:  # PostgreSQL stores no NUL in text or JSON; SQLite would: refused on both alike
        raise LimitError(f"a NUL character (U+0000) at character {nul} is not accepted", field=path or None,
                         source=source, line=line)
    pos = unicode_problem(text)
    if pos is not None:
        raise LimitError(f"not valid Unicode: a lone surrogate U+{ord(text[pos]):04X} at character {pos}",
                         field=path or None, source=source, line=line)


def check_value(value: Any, path: str = "", *, source: str | None = None, line: int | None = None,
                max_depth: int = MAX_DEPTH) -> None:
    """Refuse lone surrogates (in keys and strings), integers beyond 64 bits, NaN/infinity and nesting
    deeper than ``max_depth``. Iterative: a deep value cannot exhaust the stack here."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        v, where, depth = stack.pop()
        if isinstance(v, str):
            check_text(v, where, source=source, line=line)
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if not -MAX_INT - 1 <= v <= MAX_INT:
                raise LimitError(f"the integer is outside the 64-bit range (±{MAX_INT:,})", field=where or None,
                                 source=source, line=line)
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise LimitError(f"{v} is not a finite number", field=where or None, source=source, line=line)
        elif isinstance(v, dict | list | tuple):
            if depth >= max_depth:
                raise LimitError(f"nested deeper than {max_depth} levels", field=where or None, source=source,
                                 line=line)
            if isinstance(v, dict):
                for k, item in v.items():
                    if isinstance(k, str):
                        check_text(k, f"{where}.{k!s}" if where else str(k), source=source, line=line)
                    key = str(k) if not isinstance(k, str) or unicode_problem(k) is None else ascii(k)
                    stack.append((item, f"{where}.{key}" if where else key, depth + 1))
            else:
                stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(v))


def _bounded_int(literal: str) -> int:
    digits = literal.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits is outside the 64-bit range")
    return int(literal)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def loads_json(text: str | bytes, *, source: str | None = None, line: int | None = None,
               max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the limits: syntax errors keep their line; every refusal is a LimitError
    (or UserInputError for bad syntax)."""
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise UserInputError(f"not valid JSON: {e.msg} (column {e.colno})", source=source,
                             line=(line if line is not None else e.lineno)) from None
    except RecursionError:
        raise LimitError(f"not accepted: JSON nested deeper than {max_depth} levels", source=source,
                         line=line) from None
    except ValueError as e:  # our integer and constant refusals, or a digit limit of Python's int
        raise LimitError(f"not accepted: {e}", source=source, line=line) from None
    check_value(value, source=source, line=line, max_depth=max_depth)
    return value


# ----------------------------------------------------------------------------------------------- YAML
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _expanded_size(root: yaml.Node, budget: int) -> int:
    """Characters plus nodes of the document once every alias is expanded, counted without expanding
    (each node's size once, memoised by identity); stops counting past ``budget``."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1 + len(node.value)
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not children_done:
            if len(stack) > 10 * MAX_DEPTH + 10_000_000:  # pathological width; size is over anyway
                return budget + 1
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(c), 0) for c in children)
        sizes[id(node)] = min(total, budget + 1)
    return sizes.get(id(root), 0)


def _depth_of(root: yaml.Node, max_depth: int) -> bool:
    """True when ``root`` nests no deeper than ``max_depth`` (aliases followed once per node)."""
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    seen: dict[int, int] = {}
    while stack:
        node, depth = stack.pop()
        if seen.get(id(node), -1) >= depth:
            continue
        seen[id(node)] = depth
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            if depth >= max_depth:
                return False
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for p in node.value for n in p]
            stack.extend((c, depth + 1) for c in children)
    return True


def load_yaml(text: str, *, source: str | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load`` with the limits. Aliases are allowed as long as the document they expand to
    stays within ``max(YAML_MAX_EXPANSION × len(text), YAML_MIN_BUDGET)`` characters and nodes."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if not _depth_of(node, max_depth):
                raise LimitError(f"not accepted: YAML nested deeper than {max_depth} levels", source=source)
            budget = max(YAML_MAX_EXPANSION * len(text), YAML_MIN_BUDGET)
            size = _expanded_size(node, budget)
            if size > budget:
                raise LimitError(f"not accepted: YAML aliases expand this document to more than {budget:,} "
                                 "characters and nodes; write the repeated parts out, or use fewer aliases",
                                 source=source)
            value = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise UserInputError(f"not valid YAML: {problem}", source=source,
                             line=mark.line + 1 if mark is not None else None) from None
    except RecursionError:
        raise LimitError(f"not accepted: YAML nested deeper than {max_depth} levels", source=source) from None
    except ValueError as e:  # e.g. an integer over Python's digit limit
        reason = "an integer is outside the 64-bit range" if "integer" in str(e) else str(e)
        raise LimitError(f"not accepted: {reason}", source=source) from None
    check_value(value, source=source, max_depth=max_depth)
    return value
