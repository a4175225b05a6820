"""An example ctxeval plugin (see docs/extending.md)."""
