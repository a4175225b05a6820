"""``python -m app.cli``: the ``ctxeval`` console script."""

from app.cli import main

main()
