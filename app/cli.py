"""``ctxeval`` console script: the engine's commands plus the service's."""

from __future__ import annotations

from evals.cli import cli


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
