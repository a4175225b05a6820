"""Third-party components through Python entry points.

A plugin package declares entry points in the groups ``ctxeval.strategies``, ``ctxeval.retrievers``,
``ctxeval.chunkers``, ``ctxeval.scorers``, ``ctxeval.generators`` or ``ctxeval.presets``; each names a
module (importing it registers its components with the ``evals.registry`` decorators) or a callable
taking no arguments that registers them::

    [project.entry-points."ctxeval.strategies"]
    keyword_window = "ctxeval_example.strategy"

Plugins are loaded once, the first time any kind of component is asked for. A plugin that fails to
load (import error, a name already taken, an exception while registering) is recorded under its entry
point's name with the error and never stops the others; ``ctxeval plugins`` lists both.
"""

from __future__ import annotations

import importlib.metadata
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

GROUPS = ("ctxeval.strategies", "ctxeval.retrievers", "ctxeval.chunkers", "ctxeval.scorers",
          "ctxeval.generators", "ctxeval.presets")


@dataclass
class PluginStatus:
    """One entry point: what it is, and what it registered or why it failed."""

    name: str
    group: str
    value: str
    distribution: str | None
    components: list[str] = field(default_factory=list)  # "kind:name" of what it registered
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_lock = threading.RLock()
_status: list[PluginStatus] | None = None


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    found: list[importlib.metadata.EntryPoint] = []
    for group in GROUPS:
        found.extend(importlib.metadata.entry_points(group=group))
    return found


def _load_one(ep: importlib.metadata.EntryPoint) -> PluginStatus:
    from evals import registry

    dist = ep.dist.name if getattr(ep, "dist", None) is not None else None  # type: ignore[union-attr]
    status = PluginStatus(name=ep.name, group=ep.group, value=ep.value, distribution=dist)
    before = {(c.kind, c.name) for kind in registry.KINDS for c in registry._registry[kind].values()}
    try:
        with registry.plugin_source(ep.name):
            obj = ep.load()
            if not isinstance(obj, ModuleType) and callable(obj):
                obj()
    except Exception as e:  # any plugin fault is reported, never raised
        last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
        where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
        status.error = f"{type(e).__name__}: {e}{where}"
    after = {(c.kind, c.name) for kind in registry.KINDS for c in registry._registry[kind].values()}
    status.components = sorted(f"{k}:{n}" for k, n in after - before)
    return status


def load_all() -> list[PluginStatus]:
    """Load every installed plugin once; later calls return the same statuses."""
    global _status
    with _lock:
        if _status is None:
            _status = []  # set first: a plugin asking the registry while it loads must not recurse
            _status.extend(_load_one(ep) for ep in _entry_points())
        return list(_status)


def loaded() -> bool:
    return _status is not None


def statuses() -> list[PluginStatus]:
    """The plugins found and what became of each (loads them if that has not happened yet, and every
    kind's built-in components, so a plugin that reused a built-in name is reported)."""
    from evals import registry

    for kind in registry.KINDS:
        registry.components(kind)
    out = load_all()
    for plugin, kind, name in registry.overridden:
        for st in out:
            if st.name == plugin and f"{kind}:{name}" in st.components:
                st.components.remove(f"{kind}:{name}")
                st.error = (st.error + "; " if st.error else "") + f"{kind} '{name}' is a built-in name"
    return out


def reset_for_tests() -> None:
    """Forget what was loaded (tests that install entry points at run time)."""
    global _status
    with _lock:
        _status = None
