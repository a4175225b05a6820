"""``ctxeval components [KIND]`` and ``ctxeval plugins``: what the component registry holds.

Both read ``evals.registry`` (built-ins and installed plugins alike), so a new strategy, retriever,
scorer or generator shows up here with no edit to the command line.
"""

from __future__ import annotations

import json
import textwrap

import typer

from evals import plugins, registry

WIDTH = 80
KIND_HELP = "strategies, retrievers, chunkers, scorers, generators or presets (default: all)"
_BY_PLURAL = {plural: kind for kind, plural in registry.PLURAL.items()}


def _kind(word: str) -> registry.Kind:
    kind = _BY_PLURAL.get(word) or (word if word in registry.KINDS else None)
    if kind is None:
        typer.echo(f"error: unknown kind '{word}'; kinds: {', '.join(registry.PLURAL.values())}", err=True)
        raise typer.Exit(2)
    return kind


def _params_line(schema: dict[str, object]) -> str:
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return ""
    parts = []
    for name, spec in props.items():
        default = spec.get("default") if isinstance(spec, dict) else None
        parts.append(f"{name}={json.dumps(default)}" if default is not None else name)
    return ", ".join(parts)


def register(cli: typer.Typer) -> None:
    @cli.command("components")
    def components_command(
        kind: str | None = typer.Argument(None, help=KIND_HELP),
        as_json: bool = typer.Option(False, "--json", help="the catalogue as JSON, parameters as JSON Schema"),
    ) -> None:
        """List the registered components of each kind with their parameters (built-ins and plugins)."""
        kinds = [_kind(kind)] if kind else list(registry.KINDS)
        if as_json:
            data = {registry.PLURAL[k]: registry.catalogue(k) for k in kinds}
            typer.echo(json.dumps(data[registry.PLURAL[kinds[0]]] if kind else data, indent=2))
            return
        for k in kinds:
            typer.echo(f"{registry.PLURAL[k]}:")
            for comp in registry.components(k):
                flags = [f for f, on in (("retrieval", comp.needs_retrieval), ("model", comp.needs_model)) if on]
                head = comp.name + (f"[:{comp.arg}]" if comp.arg else "")
                origin = f" (plugin {comp.source})" if comp.source != "ctxeval" else ""
                text = comp.description + origin + (f" [needs {', '.join(flags)}]" if flags else "")
                typer.echo(textwrap.fill(text, WIDTH, initial_indent=f"  {head:<22} ",
                                         subsequent_indent=" " * 25))
                params = _params_line(comp.json_schema())
                if params and k != "generator":
                    typer.echo(textwrap.fill(f"params: {params}", WIDTH, initial_indent=" " * 25,
                                             subsequent_indent=" " * 27))

    @cli.command("plugins")
    def plugins_command(
        as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    ) -> None:
        """The installed plugins (entry points ctxeval.strategies, .retrievers, .scorers, .generators, ...),
        what each registered, and the error of any that failed to load. Exits 1 when one failed."""
        found = plugins.statuses()
        if as_json:
            typer.echo(json.dumps([{"name": p.name, "group": p.group, "value": p.value,
                                    "distribution": p.distribution, "components": p.components,
                                    "error": p.error} for p in found], indent=2))
        elif not found:
            typer.echo("no plugins installed")
        for p in [] if as_json else found:
            dist = f" from {p.distribution}" if p.distribution else ""
            if p.ok:
                typer.echo(f"{p.name}{dist} ({p.group}): {', '.join(p.components) or 'registered nothing'}")
            else:
                typer.echo(f"{p.name}{dist} ({p.group}): FAILED: {p.error}")
        if any(not p.ok for p in found):
            raise typer.Exit(1)
