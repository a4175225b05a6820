"""The layer rules: the engine (``evals``) is pure and is imported by the service, the pages and the
command line through its facade only; pages and routes go through services, never ``crud``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import evals

ROOT = Path(__file__).resolve().parents[1]
WEB_STACK = ("fastapi", "starlette", "sqlmodel", "sqlalchemy", "dbos", "uvicorn", "typer", "rich")
PROCESS = ("subprocess", "multiprocessing", "signal")


def _imports(path: Path) -> Iterator[tuple[int, str, ast.AST]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, node
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, node


def _files(top: str) -> list[Path]:
    return sorted((ROOT / top).rglob("*.py"))


def test_the_engine_never_imports_a_surface_or_manages_processes():
    offenders = []
    for path in _files("evals"):
        for line, name, _ in _imports(path):
            top = name.split(".")[0]
            if top == "app" or top in WEB_STACK or top in PROCESS:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert offenders == []


def test_the_engine_reads_no_environment_and_prints_nothing():
    offenders = []
    for path in _files("evals"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: os.{node.attr}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}()")
            if (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: sys.{node.attr}")
    assert offenders == []


def test_the_surfaces_import_the_engine_through_its_facade():
    offenders = []
    for path in _files("app"):
        for line, name, node in _imports(path):
            if name.startswith("evals."):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
            if isinstance(node, ast.ImportFrom) and name == "evals":
                missing = [a.name for a in node.names if a.name not in evals.__all__]
                if missing:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: not in evals.__all__: {missing}")
    assert offenders == []


def test_every_facade_name_resolves():
    for name in evals.__all__:
        assert getattr(evals, name) is not None, name


def test_pages_and_routes_never_import_crud():
    offenders = []
    for top in ("app/web", "app/api/routes"):
        for path in _files(top):
            for line, name, node in _imports(path):
                crud = name == "app.crud" or (isinstance(node, ast.ImportFrom) and name == "app"
                                              and any(a.name == "crud" for a in node.names))
                if crud:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == []


def test_pages_run_no_queries_of_their_own():
    offenders = []
    for path in _files("app/web"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("exec", "execute", "scalars", "scalar")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "session"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        for line, name, _ in _imports(path):
            if name in ("sqlmodel", "sqlalchemy") or name.startswith("sqlalchemy."):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert offenders == []


QUERY_CALLS = ("exec", "execute", "exec_driver_sql", "scalar", "scalars")
QUERY_BUILDERS = ("select", "insert", "update", "delete", "text")
QUERY_HOMES = {"app/crud.py", "app/db.py"}  # and the migrations


def test_every_query_of_the_service_is_in_crud():
    """Outside ``crud.py`` (and the engine setup in ``db.py``, the migrations) nothing builds or runs SQL."""
    offenders = []
    for path in _files("app"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in QUERY_HOMES or rel.startswith("app/migrations/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in QUERY_CALLS and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("session", "conn", "connection", "db")):
                offenders.append(f"{rel}:{node.lineno}: {node.func.value.id}.{node.func.attr}()")
            if (isinstance(node, ast.ImportFrom) and node.module
                    and node.module.split(".")[0] in ("sqlalchemy", "sqlmodel")):
                offenders += [f"{rel}:{node.lineno}: {node.module}.{a.name}" for a in node.names
                              if a.name in QUERY_BUILDERS]
    assert offenders == []
