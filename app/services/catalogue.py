"""The component catalogue of the API: strategies, scorers and suite generators, each with its
parameters as JSON Schema. The parameters come from the same models the engine validates with and the
dashboard's new-run form reads (a strategy's ``Params``, a generator's params model), so what the API
lists is what a run accepts.

Each entry: ``kind``, ``name``, ``label``, ``description``, ``needs_retrieval``, ``needs_model``, ``arg``
(the parameter a ``name:value`` suffix sets, e.g. ``recall_at_k:10``), ``source`` and ``params``.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

Kind = Literal["strategy", "scorer", "generator"]

# generator kind -> "module:ParamsModel" (the model its generate_<kind> function validates with)
_GENERATOR_PARAMS = {
    "niah": "evals.suites.niah:NiahParams",
    "passkey": "evals.suites.passkey:PasskeyParams",
    "ruler_niah_single": "evals.suites.ruler_niah:SingleParams",
    "ruler_niah_multikey": "evals.suites.ruler_niah:MultikeyParams",
    "ruler_niah_multivalue": "evals.suites.ruler_niah:MultivalueParams",
    "ruler_niah_multiquery": "evals.suites.ruler_niah:MultiqueryParams",
    "ruler_vt": "evals.suites.ruler_vt:VtParams",
    "ruler_cwe": "evals.suites.ruler_cwe:CweParams",
    "ruler_fwe": "evals.suites.ruler_fwe:FweParams",
    "lim_kv": "evals.suites.lim_kv:LimKvParams",
    "multihop": "evals.suites.multihop:MultihopParams",
}


class NoParams(BaseModel):
    """The component takes no parameters."""

    model_config = ConfigDict(extra="forbid")


STRATEGY_ORDER = {"no_context": 0, "long_context": 1, "rag": 2, "self_route": 3}  # then by name


def strategy_names() -> list[str]:
    """Registered strategies in the order the form and the catalogue list them."""
    from evals.strategies import STRATEGIES

    return sorted(STRATEGIES, key=lambda n: (STRATEGY_ORDER.get(n, 99), n))


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def _entry(kind: str, name: str, params: type[BaseModel], description: str, *, needs_retrieval: bool = False,
           needs_model: bool = False, arg: str | None = None, label: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "name": name, "label": label or name, "description": description,
            "needs_retrieval": needs_retrieval, "needs_model": needs_model, "arg": arg, "source": "ctxeval",
            "params": params.model_json_schema()}


def _strategies() -> list[dict[str, Any]]:
    from evals.strategies import STRATEGIES
    from evals.summary import LONG_CONTEXT, NO_CONTEXT

    order = strategy_names()
    return [_entry("strategy", name, STRATEGIES[name].Params, _first_line(STRATEGIES[name].__doc__),
                   needs_retrieval=name not in (NO_CONTEXT, LONG_CONTEXT)) for name in order]


def _scorers() -> list[dict[str, Any]]:
    from evals.judge import RUBRICS
    from evals.scorers import _RANKING, JUDGE_SCORER, RANK_K, SCORERS

    out = []
    for s in SCORERS.values():
        if s.name in _RANKING and _RANKING[s.name][1] is not None:
            params = create_model(f"{s.name}_params", __config__=ConfigDict(extra="forbid"),
                                  k=(int, Field(default=RANK_K, ge=1, description="documents ranked; "
                                                f"'{s.name}:10' sets k = 10")))
            out.append(_entry("scorer", s.name, params, s.description, needs_retrieval=True, arg="k"))
        else:
            out.append(_entry("scorer", s.name, NoParams, s.description, needs_retrieval=s.kind == "retrieval"))
    judge = create_model("llm_judge_params", __config__=ConfigDict(extra="forbid"),
                         rubric=(Literal[RUBRICS], Field(default="correctness",  # type: ignore[valid-type]
                                 description="what the judge grades; 'llm_judge:faithfulness' sets it")))
    out.append(_entry("scorer", JUDGE_SCORER, judge, "a judge model grades the answer against the rubric "
                      "(needs a judge endpoint)", needs_model=True, arg="rubric"))
    return out


def _generators() -> list[dict[str, Any]]:
    from evals.suites import registry

    out = []
    for kind in registry.list_kinds():
        target = _GENERATOR_PARAMS.get(kind)
        params: type[BaseModel] = NoParams
        if target:
            module, _, attr = target.partition(":")
            params = getattr(importlib.import_module(module), attr)
        fn = registry.generator(kind)
        out.append(_entry("generator", kind, params, _first_line(fn.__doc__)))
    return out


def catalogue(kind: Kind) -> list[dict[str, Any]]:
    """Every component of ``kind`` with its metadata and its parameters as JSON Schema."""
    return {"strategy": _strategies, "scorer": _scorers, "generator": _generators}[kind]()
