"""The engine's command line: ``ctxeval run``, ``score``, ``probe``, ``suite …``, ``model …``.

The service adds ``serve``, ``worker``, ``token`` and ``demo`` on top (see ``app/cli.py``); this module
never imports the web layer.
"""

from __future__ import annotations

import typer

from evals.model_cli import model_app
from evals.suites.cli import suite_app

cli = typer.Typer(name="ctxeval", no_args_is_help=True, add_completion=False,
                  help="Long context or retrieval? Measure it on your endpoint, side by side.")
cli.add_typer(suite_app, name="suite")
cli.add_typer(model_app, name="model")


@cli.callback()
def _root() -> None:
    """Keeps ``ctxeval`` a group of commands even while only one is registered."""


def main() -> None:
    cli()


COMMAND_MODULES = ("evals.cli_run", "evals.cli_score", "evals.cli_probe")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(cli)


_register()
