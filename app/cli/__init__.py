"""The ``ctxeval`` console script: one module per command group.

``root`` holds the command group and the engine's commands (``run``, ``score``, ``probe``, ``suite …``,
``model …``); ``service`` adds ``serve``, ``worker``, ``migrate`` and ``token …``; ``demo`` adds
``demo``. The engine (``evals``) never imports this package.
"""

from __future__ import annotations

from app.cli import demo, service
from app.cli.root import cli, main

demo.register(cli)

__all__ = ["cli", "main", "service"]
