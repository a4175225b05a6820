"""HTML forms of the dashboard: what fields a strategy offers, and form data → the API's request bodies.

Strategy fields are read from each registered strategy's ``Params`` model, so a strategy added to the
engine appears in the new-run form with its parameters. Whole-number fields accept a comma-separated
list (``k = 5, 10``): the form then asks for one strategy per combination.
"""

from __future__ import annotations

import itertools
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import FormData

from app.schemas import RunCreate, RunEmbeddings
from evals import Endpoint, StrategySpec, UserInputError, load_yaml, loads_json, registry

MAX_STRATEGIES = 64


@dataclass
class FieldSpec:
    name: str
    kind: Literal["int", "float", "bool", "choice", "text"]
    default: Any
    choices: list[str]
    description: str
    optional: bool


@dataclass
class StrategyForm:
    name: str
    description: str
    fields: list[FieldSpec]
    label: str = ""
    preselected: bool = False  # ticked on a fresh new-run form


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether None was allowed."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _field(name: str, info: Any) -> FieldSpec | None:
    annotation, optional = _unwrap(info.annotation)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    description = info.description or ""
    if typing.get_origin(annotation) is Literal:
        return FieldSpec(name, "choice", default, [str(a) for a in typing.get_args(annotation)], description, optional)
    if annotation is bool:
        return FieldSpec(name, "bool", default, [], description, optional)
    if annotation is int:
        return FieldSpec(name, "int", default, [], description, optional)
    if annotation is float:
        return FieldSpec(name, "float", default, [], description, optional)
    if annotation is str:
        kind = registry.field_component(info)
        if kind is not None:  # a parameter naming a registered component (retriever, chunker, ...)
            return FieldSpec(name, "choice", default, registry.names(kind), description, optional)
        return FieldSpec(name, "text", default, [], description, optional)
    return None  # nested parameters (dicts, models) are left to the JSON API


def strategy_forms() -> list[StrategyForm]:
    """Every registered strategy (built-in or plugin) with the parameters a form can set."""
    out = []
    for comp in registry.components("strategy"):
        fields = [f for n, info in comp.params.model_fields.items() if (f := _field(n, info)) is not None]
        out.append(StrategyForm(comp.name, comp.description, fields, comp.label,
                                bool(comp.extra.get("preselected"))))
    return out


def _values(raw: str, spec: FieldSpec, where: str) -> list[Any]:
    """The value(s) of one field; None when the field is left empty."""
    raw = raw.strip()
    if raw == "":
        return [None]
    if spec.kind == "int":
        out = []
        for part in (p.strip() for p in raw.split(",")):
            try:
                out.append(int(part))
            except ValueError:
                raise UserInputError(f"'{part}' is not a whole number", field=where) from None
        return list(dict.fromkeys(out))
    if spec.kind == "float":
        try:
            return [float(raw)]
        except ValueError:
            raise UserInputError(f"'{raw}' is not a number", field=where) from None
    if spec.kind == "choice" and raw not in spec.choices:
        raise UserInputError(f"'{raw}' is not one of {', '.join(spec.choices)}", field=where)
    return [raw]


def strategies_from_form(form: FormData) -> list[StrategySpec]:
    """The strategies ticked in the form; parameters equal to their default are left out of the spec."""
    specs: list[StrategySpec] = []
    for sf in strategy_forms():
        if not form.get(f"s.{sf.name}.on"):
            continue
        axes: list[list[tuple[str, Any]]] = []
        for f in sf.fields:
            key = f"s.{sf.name}.{f.name}"
            if f.kind == "bool":
                value = bool(form.get(key))
                if value != bool(f.default):
                    axes.append([(f.name, value)])
                continue
            values = [v for v in _values(str(form.get(key, "")), f, key) if v is not None and v != f.default]
            if values:
                axes.append([(f.name, v) for v in values])
        for combo in itertools.product(*axes):
            specs.append(StrategySpec(name=sf.name, params=dict(combo)))
            if len(specs) > MAX_STRATEGIES:
                raise UserInputError(f"the form asks for more than {MAX_STRATEGIES} strategies; use fewer "
                                     "comma-separated values", field="strategies")
    if not specs:
        raise UserInputError("tick at least one strategy", field="strategies")
    return specs


def _int(form: FormData, key: str) -> int | None:
    raw = str(form.get(key, "")).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise UserInputError(f"'{raw}' is not a number", field=key) from None


def run_from_form(form: FormData) -> RunCreate:
    """The ``POST /api/runs`` body the new-run form describes."""
    suite_id = _int(form, "suite_id")
    if suite_id is None:
        raise UserInputError("choose a suite", field="suite_id")
    endpoint_ids = [int(str(v)) for v in form.getlist("endpoint_ids") if str(v).isdigit()]
    if not endpoint_ids:
        raise UserInputError("tick at least one endpoint", field="endpoint_ids")
    ticked = [str(s) for s in form.getlist("scorers")]
    more = [s.strip() for s in str(form.get("more_scorers", "")).split(",") if s.strip()]
    scorers = list(dict.fromkeys(ticked + more)) or None
    name = str(form.get("name", "")).strip() or None
    system_prompt = str(form.get("system_prompt", "")).strip() or None
    preset = str(form.get("preset", "")).strip() or None
    embeddings = None
    source = str(form.get("embeddings_source", "")).strip()
    if source:
        embeddings = RunEmbeddings(source=source, endpoint_id=_int(form, "embeddings_endpoint_id"),  # type: ignore[arg-type]
                                   model=str(form.get("embeddings_model", "")).strip() or None)
    return RunCreate(suite_id=suite_id, endpoint_ids=endpoint_ids, strategies=strategies_from_form(form),
                     scorers=scorers, system_prompt=system_prompt, preset=preset, name=name,
                     judge_endpoint_id=_int(form, "judge_endpoint_id"), embeddings=embeddings)


def values_from_spec(spec: Any, *, suite_id: int, endpoint_ids: dict[str, int],
                     scorer_names: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The new-run form's values that describe a stored run's spec (``RunSpec``), for "Edit and
    re-run", and what the form cannot say (missing endpoints, strategies it cannot express)."""
    values: dict[str, Any] = {"_submitted": "1", "suite_id": str(suite_id)}
    notes: list[str] = []
    ids = []
    for e in spec.endpoints:
        if e["name"] in endpoint_ids:
            ids.append(str(endpoint_ids[e["name"]]))
        else:
            notes.append(f"endpoint '{e['name']}' no longer exists; choose another")
    values["endpoint_ids"] = ids
    forms = {sf.name: sf for sf in strategy_forms()}
    for st in spec.strategies:
        sf = forms.get(st.name)
        if sf is None:
            notes.append(f"strategy '{st.key}' is not registered on this service")
            continue
        values[f"s.{st.name}.on"] = "on"
        for f in sf.fields:
            key = f"s.{st.name}.{f.name}"
            value = st.params.get(f.name, f.default)
            if f.kind == "bool":
                if value:
                    values[key] = "on"
            elif f.kind == "int" and key in values and value is not None:
                listed = [p.strip() for p in str(values[key]).split(",") if p.strip()]
                if str(value) not in listed:
                    values[key] = ", ".join([*listed, str(value)])
            elif key not in values:
                values[key] = "" if value is None else str(value)
    ticked = [n for n in spec.scorers if n in scorer_names]
    values["scorers"] = ticked
    values["more_scorers"] = ", ".join(n for n in spec.scorers if n not in scorer_names)
    if spec.system_prompt:
        values["system_prompt"] = spec.system_prompt
    if spec.judge and spec.judge.get("name") in endpoint_ids:
        values["judge_endpoint_id"] = str(endpoint_ids[spec.judge["name"]])
    emb = spec.embeddings or {}
    if emb.get("source"):
        values["embeddings_source"] = emb["source"]
        if emb.get("model"):
            values["embeddings_model"] = emb["model"]
        named = (emb.get("endpoint") or {}).get("name")
        if named in endpoint_ids:
            values["embeddings_endpoint_id"] = str(endpoint_ids[named])
    try:
        from starlette.datastructures import FormData as _FormData

        items = [(k, v) for k, vs in values.items() for v in (vs if isinstance(vs, list) else [vs])]
        again = {s.key for s in strategies_from_form(_FormData(items))}
        wanted = [s.key for s in spec.strategies if s.name in forms]
        lost = [k for k in wanted if k not in again]
        extra = sorted(again - set(wanted))
        if lost:
            notes.append("the form cannot express " + ", ".join(lost) + " (nested or joint parameters): "
                         "check the strategies, or re-run through the API")
        if extra:
            notes.append("the form's lists also ask for " + ", ".join(extra) + "; untick or edit before starting")
    except UserInputError:
        pass
    return values, notes


# -------------------------------------------------------------------------------------------- endpoint
ENDPOINT_FORM_FIELDS = ("name", "base_url", "model", "context_window", "max_output_tokens", "price_input",
                        "price_cached_input", "price_output", "concurrency", "tokenizer", "embedding_model")


def endpoint_from_form(form: FormData) -> Endpoint:
    """An endpoint from the add-endpoint form. The key is taken from the form and never sent back."""
    data: dict[str, Any] = {}
    for name in ENDPOINT_FORM_FIELDS:
        raw = str(form.get(name, "")).strip()
        if raw:
            data[name] = raw
    key = str(form.get("api_key", ""))
    if key.strip():
        data["api_key"] = key.strip()
    from app.schemas import EndpointCreate

    return EndpointCreate.model_validate(data)


def endpoint_changes_from_form(form: FormData) -> dict[str, Any]:
    """The ``PATCH /api/endpoints/{id}`` body of the edit form: every listed field (an empty one goes
    back to its default, e.g. an unknown window); the key only when one is typed (a new key) or
    ``remove_api_key`` is ticked, so an untouched key field keeps the stored key."""
    changes: dict[str, Any] = {}
    for name in ENDPOINT_FORM_FIELDS:
        raw = str(form.get(name, "")).strip()
        if raw:
            changes[name] = raw
        else:
            info = Endpoint.model_fields[name]
            if info.is_required():
                raise UserInputError(f"{name} is required", field=name)
            changes[name] = info.get_default(call_default_factory=True)
    key = str(form.get("api_key", "")).strip()
    if key:
        changes["api_key"] = key
    elif form.get("remove_api_key"):
        changes["api_key"] = None
    return changes


def params_from_text(text: str) -> dict[str, Any]:
    """Generator parameters typed as JSON or YAML (``key: value`` lines)."""
    text = text.strip()
    if not text:
        return {}
    try:  # with the input limits: no alias bomb, no lone surrogate, no 5000-digit integer
        value = loads_json(text) if text.startswith("{") else load_yaml(text)
    except UserInputError as e:
        raise UserInputError(f"the parameters are not accepted: {e.detail}", field="params", line=e.line) from None
    if not isinstance(value, dict):
        raise UserInputError("the parameters must be a mapping of names to values", field="params")
    return value


def form_values(form: FormData | None) -> dict[str, Any]:
    """Form data as a plain dict (lists for repeated keys) to refill a form after an error; the key of
    an endpoint is never among them."""
    if form is None:
        return {}
    out: dict[str, Any] = {}
    for key in form:
        if key == "api_key":
            continue
        values = form.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


def validation_message(error: Exception) -> str:
    """A pydantic validation error as one line naming the field."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        first = error.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first['msg']}" if loc else str(first["msg"])
    return str(error)
