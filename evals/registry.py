"""One registry for every pluggable component: strategies, retrievers, chunkers, scorers, generators
and presets.

A component registers with one decorator of its kind and declares, once, its parameters as a pydantic
model plus the metadata the surfaces need::

    @strategy("my_rag", params=MyParams, label="My RAG", needs_retrieval=True)
    class MyRag(Strategy): ...

Everything else reads the registry: the engine builds components with :func:`build`, the dashboard's
new-run form and the CLI help list :func:`components`, validation goes through :meth:`Component.validate`
and the API catalogue serves :func:`catalogue` (each component's parameters as JSON Schema).

Built-in components live in the modules listed in ``BUILTIN_MODULES`` and are imported the first time
their kind is asked for; third-party components arrive through entry points (``evals.plugins``).

A scorer may take its main parameter from its name after a colon (``recall_at_k:10``,
``llm_judge:niah``): the component names that parameter in ``arg``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from evals.errors import UserInputError

Kind = Literal["strategy", "retriever", "chunker", "scorer", "generator", "preset"]
KINDS: tuple[Kind, ...] = ("strategy", "retriever", "chunker", "scorer", "generator", "preset")
PLURAL: dict[Kind, str] = {"strategy": "strategies", "retriever": "retrievers", "chunker": "chunkers",
                           "scorer": "scorers", "generator": "generators", "preset": "presets"}

BUILTIN_MODULES: dict[Kind, tuple[str, ...]] = {
    "strategy": ("evals.strategies.context", "evals.strategies.rag", "evals.strategies.agentic",
                 "evals.strategies.http"),
    "retriever": ("evals.retrieval.bm25", "evals.retrieval.dense", "evals.retrieval.hybrid"),
    "chunker": ("evals.retrieval.chunking",),
    "scorer": ("evals.scorers", "evals.judge"),
    "generator": (),  # imported one by one, see LAZY
    "preset": ("evals.presets",),
}
_RULER = ("niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery")
LAZY: dict[Kind, dict[str, str]] = {
    # built-ins whose modules are slow to import: imported when named, or when all are listed
    "generator": {"niah": "evals.suites.niah", **{f"ruler_{k}": "evals.suites.ruler_niah" for k in _RULER},
                  **{f"ruler_{k}": f"evals.suites.ruler_{k}" for k in ("vt", "cwe", "fwe")},
                  "lim_kv": "evals.suites.lim_kv", "passkey": "evals.suites.passkey",
                  "multihop": "evals.suites.multihop"},
}
COMPONENT_KEY = "x-ctxeval-component"  # JSON Schema key of a parameter that names another component

T = TypeVar("T")


class NoParams(BaseModel):
    """The parameters of a component that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Component:
    """A registered component: what it is, how to build it, what its parameters are."""

    kind: Kind
    name: str
    target: Any  # the class or function that does the work
    params: type[BaseModel]
    label: str
    description: str
    needs_retrieval: bool = False  # strategies: it retrieves (retrieval metrics apply); scorers: scores retrieval
    needs_model: bool = False  # scorers: graded by a model (receives a model client)
    arg: str | None = None  # the parameter a ``name:value`` suffix sets
    order: int = 100  # position in lists (forms, help); ties by name
    source: str = "ctxeval"  # the plugin that registered it, for third-party components
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self, params: dict[str, Any] | None = None, *, field_prefix: str | None = None) -> BaseModel:
        """The parameters as the component's model; a ``UserInputError`` naming the field otherwise."""
        try:
            return self.params.model_validate(params or {})
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            loc = ".".join(str(x) for x in first["loc"])
            where = ".".join(p for p in (field_prefix, loc) if p) or None
            msg = str(first["msg"]).removeprefix("Value error, ")
            said = f"{loc}: {msg}" if loc else msg
            raise UserInputError(f"{self.kind} '{self.name}': {said}", field=where) from e

    def json_schema(self) -> dict[str, Any]:
        """The parameters as JSON Schema; a parameter naming a component lists the registered names."""
        schema = self.params.model_json_schema()
        _fill_component_enums(schema)
        return schema

    def describe(self) -> dict[str, Any]:
        """The catalogue entry of this component (JSON-ready)."""
        return {"kind": self.kind, "name": self.name, "label": self.label, "description": self.description,
                "needs_retrieval": self.needs_retrieval, "needs_model": self.needs_model, "arg": self.arg,
                "source": self.source, "params": self.json_schema(), **self.extra}


_lock = threading.RLock()
_registry: dict[Kind, dict[str, Component]] = {k: {} for k in KINDS}
_loaded: set[Kind] = set()
_current_source: list[str] = []
overridden: list[tuple[str, Kind, str]] = []  # (plugin, kind, name) a built-in took back from a plugin


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def register(kind: Kind, name: str, target: Any, *, params: type[BaseModel] | None = None,
             label: str | None = None, description: str | None = None, needs_retrieval: bool | None = None,
             needs_model: bool = False, arg: str | None = None, order: int = 100,
             replace: bool = False, **extra: Any) -> Component:
    """Register ``target`` as component ``name`` of ``kind`` (what the decorators call)."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind '{kind}'; kinds: {', '.join(KINDS)}")
    if not name or ":" in name or name != name.strip():
        raise ValueError(f"invalid {kind} name {name!r}: a non-empty word without ':'")
    model = params or getattr(target, "Params", None) or NoParams
    if arg is not None and arg not in model.model_fields:
        raise ValueError(f"{kind} '{name}': arg '{arg}' is not one of its parameters")
    builtin = str(getattr(target, "__module__", "")).split(".")[0] == "evals"
    source = _current_source[-1] if _current_source and not builtin else "ctxeval"
    if needs_retrieval is None:
        needs_retrieval = bool(getattr(target, "retrieval", False))
    comp = Component(kind=kind, name=name, target=target, params=model,
                     label=label or getattr(target, "label", None) or name,
                     description=description if description is not None else _first_line(target.__doc__),
                     needs_retrieval=needs_retrieval, needs_model=needs_model, arg=arg, order=order,
                     source=source, extra=extra)
    with _lock:
        existing = _registry[kind].get(name)
        if existing is not None and not replace and existing.target is not target:
            if source == "ctxeval" and existing.source != "ctxeval":
                # a built-in module loaded after a plugin took its name: the built-in keeps it
                overridden.append((existing.source, kind, name))
            else:
                raise ValueError(f"{kind} '{name}' is already registered by {existing.source}")
        _registry[kind][name] = comp
    return comp


def unregister(kind: Kind, name: str) -> None:
    """Remove a component (tests, and plugins replacing one of their own)."""
    with _lock:
        _registry[kind].pop(name, None)


def _decorator(kind: Kind) -> Callable[..., Callable[[T], T]]:
    def decorate(name: str | None = None, **meta: Any) -> Callable[[T], T]:
        def wrap(target: T) -> T:
            register(kind, name or getattr(target, "name"), target, **meta)  # noqa: B009
            return target

        return wrap

    decorate.__doc__ = f"Register the decorated class or function as a {kind} (see :func:`register`)."
    decorate.__name__ = kind
    return decorate


strategy = _decorator("strategy")
retriever = _decorator("retriever")
chunker = _decorator("chunker")
scorer = _decorator("scorer")
generator = _decorator("generator")
preset = _decorator("preset")


def _load(kind: Kind) -> None:
    """Built-in components first (every kind but the lazy ones), then the plugins, once."""
    _load_builtins(kind)
    from evals import plugins

    if not plugins.loaded():
        for other in KINDS:  # every built-in name is taken before a plugin may ask for one
            _load_builtins(other)
        plugins.load_all()


def _load_builtins(kind: Kind) -> None:
    if kind in _loaded:
        return
    with _lock:
        if kind in _loaded:
            return
        _loaded.add(kind)  # before importing: built-in modules import each other
        for module in BUILTIN_MODULES[kind]:
            importlib.import_module(module)


def _load_lazy(kind: Kind, name: str | None) -> None:
    lazy = LAZY.get(kind, {})
    for module in dict.fromkeys(m for n, m in lazy.items() if name is None or n == name):
        importlib.import_module(module)


def components(kind: Kind) -> list[Component]:
    """Every registered component of ``kind``, in display order."""
    _load(kind)
    _load_lazy(kind, None)
    return sorted(_registry[kind].values(), key=lambda c: (c.order, c.name))


def names(kind: Kind) -> list[str]:
    return [c.name for c in components(kind)]


def known_names(kind: Kind) -> list[str]:
    """The names of ``kind`` without importing slow built-in modules (for help texts), sorted."""
    _load(kind)
    return sorted(set(_registry[kind]) | set(LAZY.get(kind, {})))


def split_name(name: str) -> tuple[str, str | None]:
    """``"recall_at_k:10"`` → ``("recall_at_k", "10")``; ``"f1"`` → ``("f1", None)``."""
    base, sep, arg = name.partition(":")
    return base, (arg if sep else None)


def get(kind: Kind, name: str, *, field_name: str | None = None) -> Component:
    """The component ``name`` (a ``name:arg`` form looks up ``name``); a ``UserInputError`` listing the
    registered names otherwise."""
    _load(kind)
    base, arg = split_name(name)
    if base not in _registry[kind]:
        _load_lazy(kind, base)
    comp = _registry[kind].get(base)
    if comp is None or (arg is not None and comp.arg is None):
        known = ", ".join(f"{c.name}[:{c.arg}]" if c.arg else c.name for c in components(kind))
        raise UserInputError(f"unknown {kind} '{name}'; known: {known}", field=field_name or kind)
    return comp


def find(kind: Kind, name: str) -> Component | None:
    """The component ``name`` of ``kind``, or None when nothing by that name is registered (a stored
    run may name a plugin's component that is no longer installed)."""
    try:
        return get(kind, name)
    except UserInputError:
        return None


def params_of(kind: Kind, name: str, params: dict[str, Any] | None = None, *,
              field_prefix: str | None = None) -> BaseModel:
    """Validated parameters of component ``name``; a ``name:arg`` suffix fills the component's ``arg``."""
    comp = get(kind, name, field_name=field_prefix)
    _, arg = split_name(name)
    data = dict(params or {})
    if arg is not None and comp.arg is not None:
        data[comp.arg] = arg
    return comp.validate(data, field_prefix=field_prefix)


def build(kind: Kind, name: str, params: dict[str, Any] | None = None, *, field_prefix: str | None = None,
          **kwargs: Any) -> Any:
    """Build component ``name`` of ``kind`` with validated ``params``: ``target(params, **kwargs)``.

    For classes this is the instance; for functions (answer metrics, generators) the call's result,
    so a function component is built with the arguments it needs."""
    comp = get(kind, name, field_name=field_prefix)
    return comp.target(params_of(kind, name, params, field_prefix=field_prefix), **kwargs)


def catalogue(kind: Kind) -> list[dict[str, Any]]:
    """Every component of ``kind`` with its metadata and its parameters as JSON Schema (for the API)."""
    return [c.describe() for c in components(kind)]


def iter_all() -> Iterator[Component]:
    for kind in KINDS:
        yield from components(kind)


# --------------------------------------------------------------------------- parameters naming components
def component_name(kind: Kind) -> Any:
    """An annotation for a parameter that names a registered component of ``kind``: validated against
    the registry when used, and listed as a choice by the form and the JSON Schema."""

    def check(value: str) -> str:
        try:
            get(kind, value)
        except UserInputError as e:
            raise ValueError(e.detail) from None  # pydantic adds the field's location
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra={COMPONENT_KEY: kind})]


def _fill_component_enums(node: Any) -> None:
    if isinstance(node, dict):
        kind = node.get(COMPONENT_KEY)
        if kind in KINDS:
            node["enum"] = names(kind)
        for value in node.values():
            _fill_component_enums(value)
    elif isinstance(node, list):
        for value in node:
            _fill_component_enums(value)


def field_component(info: Any) -> Kind | None:
    """The component kind a pydantic field names (see :func:`component_name`), or None."""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get(COMPONENT_KEY) in KINDS:
        return extra[COMPONENT_KEY]  # type: ignore[no-any-return]
    for meta in getattr(info, "metadata", ()):
        extra = getattr(meta, "json_schema_extra", None)
        if isinstance(extra, dict) and extra.get(COMPONENT_KEY) in KINDS:
            return extra[COMPONENT_KEY]  # type: ignore[no-any-return]
    return None


class plugin_source:  # noqa: N801  (a context manager used like a function)
    """Components registered inside ``with plugin_source(name):`` are attributed to plugin ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        _current_source.append(self.name)

    def __exit__(self, *exc: object) -> None:
        _current_source.pop()
