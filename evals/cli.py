"""The engine's command line: ``ctxeval run``, ``score``, ``probe``, ``suite …``, ``model …``.

The service adds ``serve``, ``worker``, ``token`` and ``demo`` on top (see ``app/cli.py``); this module
never imports the web layer.
"""

from __future__ import annotations

import typer

from evals.model_cli import model_app

cli = typer.Typer(name="ctxeval", no_args_is_help=True, add_completion=False,
                  help="Long context or retrieval? Measure it on your endpoint, side by side.")
cli.add_typer(model_app, name="model")


def main() -> None:
    cli()
