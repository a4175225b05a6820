"""Suite files: YAML, JSON or JSONL in, the same out, with errors that name file, line and field.

JSONL holds one record per line, each with a ``type``: one ``suite`` record (name, description,
default_scorers, metadata; optional, the name then defaults to the file's stem), then ``document``
and ``question`` records with the fields of :class:`evals.domain.Document` and
:class:`evals.domain.Question`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from evals.domain import Document, Evidence, Question, Suite
from evals.errors import UserInputError
from evals.limits import load_yaml, loads_json
from evals.scorers import check_references

DEFAULT_MAX_BYTES = 200_000_000
DEFAULT_MAX_DOCUMENTS = 500_000
DEFAULT_MAX_QUESTIONS = 200_000
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "suite.schema.json"
_LOCATE_LIMIT = 20_000_000  # bytes of JSON we re-read to find the line of a field

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Locator = Callable[[tuple[Any, ...]], "int | None"]


# ---------------------------------------------------------------------------------------------- text
def format_of(path: str | Path) -> str:
    """``yaml``, ``json`` or ``jsonl`` from the file's extension."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UserInputError(f"unknown suite file extension '{Path(path).suffix}'; use "
                             f"{', '.join(sorted(FORMATS))}", source=str(path))
    return fmt


def decode_utf8(raw: bytes, source: str) -> str:
    """``raw`` as text; a byte that is not UTF-8 is reported with its offset and line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserInputError(f"not valid UTF-8: byte 0x{raw[e.start]:02x} at byte offset {e.start}; "
                             "save the file as UTF-8", source=source, line=line) from None


def read_text_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Read a UTF-8 text file no larger than ``max_bytes``."""
    p = Path(path)
    if not p.is_file():
        raise UserInputError("file not found", source=str(path))
    size = p.stat().st_size
    if size > max_bytes:
        raise UserInputError(f"file is {size:,} bytes, over the limit of {max_bytes:,} bytes",
                             source=str(path))
    return decode_utf8(p.read_bytes(), str(path))


# ------------------------------------------------------------------------------------------- loading
def load_suite(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
               max_documents: int = DEFAULT_MAX_DOCUMENTS,
               max_questions: int = DEFAULT_MAX_QUESTIONS) -> Suite:
    """Load a suite from a ``.yaml``/``.yml``, ``.json`` or ``.jsonl`` file."""
    fmt = format_of(path)
    text = read_text_file(path, max_bytes=max_bytes)
    return parse_suite(text, fmt, source=str(path), default_name=Path(path).stem,
                       max_documents=max_documents, max_questions=max_questions)


def parse_suite(text: str | bytes, fmt: str, *, source: str = "<suite>", default_name: str = "suite",
                max_documents: int = DEFAULT_MAX_DOCUMENTS,
                max_questions: int = DEFAULT_MAX_QUESTIONS) -> Suite:
    """Parse suite text (``fmt`` is yaml, json or jsonl); ``source`` names it in errors."""
    if isinstance(text, bytes):
        text = decode_utf8(text, source)
    text = text.removeprefix("\ufeff")
    if fmt == "jsonl":
        return _parse_jsonl(text, source, default_name, max_documents, max_questions)
    if fmt == "json":
        data = _located(lambda: loads_json(text, source=source), text)
        locator = _yaml_locator(text) if len(text) <= _LOCATE_LIMIT else _no_line
    elif fmt == "yaml":
        data = _located(lambda: load_yaml(text, source=source), text)
        locator = _yaml_locator(text)
    else:
        raise UserInputError(f"unknown suite format '{fmt}'; use yaml, json or jsonl", source=source)
    if not isinstance(data, dict):
        raise UserInputError("the top level must be a mapping with 'name', 'documents' and 'questions'",
                             source=source, line=1)
    docs, questions = data.get("documents"), data.get("questions")
    for key, items, limit in (("documents", docs, max_documents), ("questions", questions, max_questions)):
        if isinstance(items, list) and len(items) > limit:
            raise UserInputError(f"{len(items):,} {key}, over the limit of {limit:,}", source=source,
                                 field=key)
    _check_references(_records(docs, "documents", locator), _records(questions, "questions", locator),
                      source)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise _from_validation(e, Suite, source, locator, prefix=()) from None
    check_references(suite.questions, suite.default_scorers, source=source)
    return suite


def _located(parse: Callable[[], Any], text: str) -> Any:
    """``parse()``; a refusal that names a field but no line gets the field's line when it can be found."""
    try:
        return parse()
    except UserInputError as e:
        if e.line is None and len(text) <= _LOCATE_LIMIT:
            line = _line_of_field(text, e.field) if e.field else None
            if line is None:
                line = _line_of_pattern(text, e.detail)
            if line is not None:
                raise type(e)(e.detail, source=e.source, line=line, field=e.field) from None
        raise


_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_LONG_INTEGER = re.compile(r"(?<![\w.\"])-?\d{21,}")


def _line_of_pattern(text: str, detail: str) -> int | None:
    """The line of a lone surrogate escape or an overlong integer that a refusal speaks of."""
    pattern = _LONE_SURROGATE if "surrogate" in detail else _LONG_INTEGER if "integer" in detail else None
    found = pattern.search(text) if pattern is not None else None
    return text.count("\n", 0, found.start()) + 1 if found else None


def _line_of_field(text: str, field: str) -> int | None:
    """The line of ``field`` (``questions[0].metadata.x``) in JSON or YAML text, when it parses as YAML."""
    parts: list[Any] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        parts.append(int(index) if index else name)
    try:
        return _yaml_locator(text)(tuple(parts))
    except Exception:  # locating is a courtesy: never fail the error report over it
        return None


_Record = tuple[dict[str, Any], str, Callable[[tuple[Any, ...]], "int | None"]]


def _records(items: Any, key: str, locator: Locator) -> list[_Record]:
    """(record, field prefix, line of a field inside it) for each mapping in ``items``."""
    if not isinstance(items, list):
        return []
    return [(_numbers_as_text(item), f"{key}[{i}]", (lambda sub, i=i: locator((key, i, *sub))))  # type: ignore[misc]
            for i, item in enumerate(items) if isinstance(item, dict)]


def _numbers_as_text(record: dict[str, Any]) -> dict[str, Any]:
    """``id: 12`` and ``answers: [25]`` are natural to write; read those numbers as text."""
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if number(record.get("id")):
        record["id"] = str(record["id"])
    answers = record.get("answers")
    if isinstance(answers, list):
        record["answers"] = [str(a) if number(a) else a for a in answers]
    return record


def _parse_jsonl(text: str, source: str, default_name: str, max_documents: int,
                 max_questions: int) -> Suite:
    header: dict[str, Any] | None = None
    docs: list[Document] = []
    questions: list[Question] = []
    raw_docs: list[_Record] = []
    raw_questions: list[_Record] = []
    models: dict[str, type[BaseModel]] = {"document": Document, "question": Question}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = loads_json(line, source=source, line=lineno)
        if not isinstance(record, dict):
            raise UserInputError("each line must be a JSON object", source=source, line=lineno)
        kind = record.pop("type", None)
        _numbers_as_text(record)
        if kind == "suite":
            if header is not None:
                raise UserInputError("a second 'suite' record; only one is allowed", source=source,
                                     line=lineno, field="type")
            header = record
            continue
        model = models.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise UserInputError(f"'type' must be 'suite', 'document' or 'question', got {kind!r}",
                                 source=source, line=lineno, field="type")
        target, limit = (docs, max_documents) if model is Document else (questions, max_questions)
        if len(target) >= limit:
            raise UserInputError(f"more than {limit:,} {kind}s, over the limit", source=source, line=lineno)
        where = (raw_docs if model is Document else raw_questions)
        where.append((record, "", _fixed_line(lineno)))
        # ids and references are checked below with line numbers; validate shape here
        try:
            target.append(model.model_validate(record))  # type: ignore[arg-type]
        except ValidationError as e:
            raise _from_validation(e, model, source, _fixed_line(lineno), prefix=()) from None
    _check_references(raw_docs, raw_questions, source)
    head = header or {}
    head.setdefault("name", default_name)
    for key in ("documents", "questions"):
        if key in head:
            raise UserInputError(f"the 'suite' record cannot hold '{key}'; write them as their own "
                                 "records", source=source, field=key)
    try:
        return Suite.model_validate({**head, "documents": docs, "questions": questions})
    except ValidationError as e:
        raise _from_validation(e, Suite, source, _no_line, prefix=()) from None


# --------------------------------------------------------------------------------------- references
def _check_references(docs: Iterable[_Record], questions: Iterable[_Record], source: str) -> None:
    """Duplicate ids and unknown document references, each with the line and field that is wrong."""
    def field(prefix: str, name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    seen: dict[str, str] = {}
    for record, prefix, line in docs:
        did = record.get("id")
        if not isinstance(did, str):
            continue
        if did in seen:
            first = f" (first at {seen[did]})" if seen[did] else ""
            raise UserInputError(f"duplicate document id '{did}'{first}", source=source, line=line(("id",)),
                                 field=field(prefix, "id"))
        seen[did] = prefix or f"line {line(())}"
    qseen: dict[str, str] = {}
    for record, prefix, line in questions:
        qid = record.get("id")
        if isinstance(qid, str):
            if qid in qseen:
                raise UserInputError(f"duplicate question id '{qid}' (first at {qseen[qid]})",
                                     source=source, line=line(("id",)), field=field(prefix, "id"))
            qseen[qid] = prefix or f"line {line(())}"
        refs: list[tuple[tuple[Any, ...], Any]] = []
        evidence = record.get("evidence")
        if isinstance(evidence, list):
            refs += [(("evidence", i, "doc_id"), ev.get("doc_id")) for i, ev in enumerate(evidence)
                     if isinstance(ev, dict)]
        doc_ids = record.get("doc_ids")
        if isinstance(doc_ids, list):
            refs += [(("doc_ids", i), d) for i, d in enumerate(doc_ids)]
        for sub, ref in refs:
            if isinstance(ref, str) and ref not in seen:
                raise UserInputError(f"unknown document '{ref}'{did_you_mean(ref, seen)}",
                                     source=source, line=line(sub), field=field(prefix, _loc_text(sub)))


def did_you_mean(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------------------------- error reporting
def _no_line(_loc: tuple[Any, ...]) -> int | None:
    return None


def _fixed_line(line: int) -> Locator:
    return lambda _loc: line


def yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (a pydantic error location), or of its closest parent."""
    if node is None:
        return None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
    return int(node.start_mark.line) + 1


def _yaml_locator(text: str) -> Locator:
    """Find the line of a field by walking YAML nodes; composed only when an error needs it."""
    root: list[Any] = []

    def locate(loc: tuple[Any, ...]) -> int | None:
        if not root:
            try:
                root.append(yaml.compose(text, Loader=_Loader))
            except yaml.YAMLError:
                root.append(None)
        return yaml_line(root[0], loc)

    return locate


def _loc_text(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


_CONTAINERS: dict[str, type[BaseModel]] = {"documents": Document, "questions": Question, "evidence": Evidence}


def _from_validation(err: ValidationError, root: type[BaseModel], source: str, locator: Locator,
                     prefix: tuple[Any, ...]) -> UserInputError:
    errors = err.errors(include_url=False)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = prefix + tuple(first["loc"])
    kind, msg = first["type"], first["msg"]
    if kind == "extra_forbidden" and loc:
        parent = next((m for p in reversed(loc[:-1]) if isinstance(p, str)
                       for m in [_CONTAINERS.get(p)] if m), root)
        msg = f"unknown field '{loc[-1]}' (allowed: {', '.join(parent.model_fields)})"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind not in ("value_error", "assertion_error") and "input" in first:
        msg = f"{msg}, got {_short(first['input'])}"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    more = len(errors) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return UserInputError(msg, source=source, line=locator(loc) if loc else None,
                          field=_loc_text(loc) or None)


# ------------------------------------------------------------------------------------------- writing
class _Dumper(_BaseDumper):  # type: ignore[misc]
    pass


def _str_representer(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dumps_suite(suite: Suite, fmt: str) -> str:
    """The suite as yaml, json or jsonl text (fields left at their defaults are omitted)."""
    data = suite.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("documents", [])
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "yaml":
        return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000))
    if fmt == "jsonl":
        head = {k: v for k, v in data.items() if k not in ("documents", "questions")}
        lines = [{"type": "suite", **head}]
        lines += [{"type": "document", **d} for d in data["documents"]]
        lines += [{"type": "question", **q} for q in data["questions"]]
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
    raise UserInputError(f"unknown suite format '{fmt}'; use yaml, json or jsonl")


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    p = Path(path)
    if not p.parent.is_dir():
        raise UserInputError("the folder to write into does not exist", source=str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump_suite(suite: Suite, path: str | Path) -> None:
    """Write ``suite`` to ``path`` in the format its extension names."""
    write_atomic(path, dumps_suite(suite, format_of(path)))


# -------------------------------------------------------------------------------------------- schema
def suite_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a suite file in YAML or JSON form."""
    schema = Suite.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "ctxeval suite",
            **{k: v for k, v in schema.items() if k != "title"}}


def suite_json_schema_text() -> str:
    """The schema as it is published in ``evals/schemas/suite.schema.json``."""
    return json.dumps(suite_json_schema(), indent=2, ensure_ascii=False) + "\n"
