"""The root of the ``ctxeval`` command line and the engine's commands: ``run``, ``score``, ``probe``,
``suite …``, ``model …``.

The service's commands (``serve``, ``worker``, ``migrate``, ``token``) and ``demo`` are added by
``app.cli`` (see ``app/cli/__init__.py``); this module never imports the web layer.
"""

from __future__ import annotations

import typer

from app.cli.model import model_app
from app.cli.suite import suite_app

cli = typer.Typer(name="ctxeval", no_args_is_help=True, add_completion=False,
                  help="Long context or retrieval? Measure it on your endpoint, side by side.")
cli.add_typer(suite_app, name="suite")
cli.add_typer(model_app, name="model")


@cli.callback()
def _root() -> None:
    """Keeps ``ctxeval`` a group of commands even while only one is registered."""


def main() -> None:
    cli()


COMMAND_MODULES = ("app.cli.run", "app.cli.score", "app.cli.probe", "app.cli.components", "app.cli.remote",
                   "app.cli.report")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(cli)


_register()
