"""The engine's command line: ``ctxeval run``, ``score``, ``probe``, ``suite …``.

The service adds ``serve``, ``worker``, ``token`` and ``demo`` on top (see ``app/cli.py``); this module
never imports the web layer.
"""

from __future__ import annotations

import typer

cli = typer.Typer(name="ctxeval", no_args_is_help=True, add_completion=False,
                  help="Long context or retrieval? Measure it on your endpoint, side by side.")


@cli.callback()
def _root() -> None:
    """Keeps ``ctxeval`` a group of commands even while only one is registered."""


def main() -> None:
    cli()


def _register() -> None:
    from evals import cli_score

    cli_score.register(cli)


_register()
