"""The engine never imports the web layer."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_evals_never_imports_app():
    offenders = []
    for path in (ROOT / "evals").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n == "app" or n.startswith("app.") or n.split(".")[0] in ("fastapi", "sqlmodel", "dbos"):
                    offenders.append(f"{path.relative_to(ROOT)}: {n}")
    assert offenders == []
